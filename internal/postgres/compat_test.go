package postgres_test

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/migrations"
)

// breaking are the statements an older binary may not run on: a migration
// (after 21) that holds one must set schema_compat.oldest_binary to its own
// version rather than leave it (see migration 21). The list is the common
// cases, not a proof: a change of meaning needs the author's eye as well.
var breaking = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`(?i)\bDROP\s+(TABLE|COLUMN|VIEW|FUNCTION|TYPE|SCHEMA)\b`), "drops what older binaries may use"},
	{regexp.MustCompile(`(?i)\bRENAME\b`), "renames what older binaries name"},
	{regexp.MustCompile(`(?i)\bALTER\s+COLUMN\s+\w+\s+(SET\s+DATA\s+)?TYPE\b`), "changes a column's type"},
	{regexp.MustCompile(`(?i)\bSET\s+NOT\s+NULL\b`), "requires a value older binaries may not write"},
	{regexp.MustCompile(`(?i)\bADD\s+(CONSTRAINT\s+\w+\s+)?(CHECK|UNIQUE|FOREIGN\s+KEY|PRIMARY\s+KEY|EXCLUDE)\b`), "adds a rule older binaries' writes may break"},
	{regexp.MustCompile(`(?i)\bREVOKE\b`), "takes away a right older binaries may use"},
}

var (
	lineComment   = regexp.MustCompile(`--[^\n]*`)
	addColumn     = regexp.MustCompile(`(?is)\bADD\s+COLUMN\s+[^,;]*`)
	notNull       = regexp.MustCompile(`(?i)\bNOT\s+NULL\b`)
	defaulted     = regexp.MustCompile(`(?i)\b(DEFAULT|GENERATED)\b`)
	setsOldest    = regexp.MustCompile(`(?i)\bUPDATE\s+schema_compat\s+SET\s+oldest_binary\s*=\s*(\d+)`)
	mentionCompat = regexp.MustCompile(`(?i)\bschema_compat\b`)
	createTable   = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)`)
	// target is the table an ALTER TABLE or a REVOKE statement is about.
	target = regexp.MustCompile(`(?is)^\s*(?:ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?([\w.]+)|REVOKE\b.*?\bON\s+(?:TABLE\s+)?([\w.]+))`)
)

// compatProblems checks the up script of migration version against
// migration 21's promise: it says which binaries its schema serves (it
// names schema_compat, to leave it or to set it), one that sets
// oldest_binary sets it to its own version, and one that leaves it holds
// none of the breaking statements.
func compatProblems(version int, up string) []string {
	var out []string
	if !mentionCompat.MatchString(up) {
		out = append(out, "say whether binaries of the previous version still run on it: leave schema_compat (a comment naming it) or set oldest_binary (see migration 21)")
	}
	code := lineComment.ReplaceAllString(up, "")
	if m := setsOldest.FindStringSubmatch(code); m != nil {
		if n, _ := strconv.Atoi(m[1]); n != version {
			out = append(out, fmt.Sprintf("sets oldest_binary to %d: a migration that older binaries cannot run on sets it to its own version, %d", n, version))
		}
		return out
	}
	created := map[string]bool{}
	for _, m := range createTable.FindAllStringSubmatch(code, -1) {
		created[strings.ToLower(m[1])] = true
	}
	for _, stmt := range strings.Split(code, ";") {
		if m := target.FindStringSubmatch(stmt); m != nil && created[strings.ToLower(m[1]+m[2])] {
			continue // a table this migration creates: no older binary uses it
		}
		for _, b := range breaking {
			if m := b.re.FindString(stmt); m != "" {
				out = append(out, fmt.Sprintf("%q %s, yet it leaves oldest_binary: set it to %d", m, b.why, version))
			}
		}
		for _, c := range addColumn.FindAllString(stmt, -1) {
			if notNull.MatchString(c) && !defaulted.MatchString(c) {
				out = append(out, fmt.Sprintf("%q adds a required column without a default, which older binaries do not write, yet it leaves oldest_binary: set it to %d", strings.TrimSpace(c), version))
			}
		}
	}
	return out
}

// Every migration after 21 decides which binaries its schema serves, and
// keeps what it decided.
func TestEveryMigrationDecidesWhichBinariesItServes(t *testing.T) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 21 || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		body, err := fs.ReadFile(migrations.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range compatProblems(v, string(body)) {
			t.Errorf("%s: %s", e.Name(), p)
		}
	}
}

// compatProblems finds what the migrations to come could get wrong.
func TestCompatProblems(t *testing.T) {
	const leaves = "-- Additive: leaves schema_compat.\n"
	for _, tc := range []struct {
		name, up string
		want     string // a part of the one problem expected; "" for none
	}{
		{"a new table", leaves + "CREATE TABLE x (id bigint PRIMARY KEY, note text NOT NULL);", ""},
		{"a column with a default", leaves + "ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT '';", ""},
		{"a generated column", leaves + "ALTER TABLE t ADD COLUMN f boolean GENERATED ALWAYS AS (s NOT IN ('a', 'b')) STORED;", ""},
		{"a nullable column and an index", leaves + "ALTER TABLE t ADD COLUMN c text;\nCREATE INDEX t_c ON t (c);", ""},
		{"breaking words in a comment only", leaves + "-- no DROP COLUMN, no RENAME here\nCREATE INDEX t_c ON t (c);", ""},
		{"silent", "CREATE TABLE x (id bigint PRIMARY KEY);", "say whether binaries of the previous version"},
		{"a required column without a default", leaves + "ALTER TABLE t ADD COLUMN c text NOT NULL;", "required column without a default"},
		{"a dropped column", leaves + "ALTER TABLE t DROP COLUMN c;", "drops what older binaries may use"},
		{"a renamed column", leaves + "ALTER TABLE t RENAME COLUMN a TO b;", "renames"},
		{"a changed type", leaves + "ALTER TABLE t ALTER COLUMN a TYPE bigint;", "changes a column's type"},
		{"a column made required", leaves + "ALTER TABLE t ALTER COLUMN a SET NOT NULL;", "requires a value"},
		{"a new check", leaves + "ALTER TABLE t ADD CONSTRAINT t_a CHECK (a > 0);", "adds a rule"},
		{"a right taken", leaves + "REVOKE UPDATE ON t FROM ordertune_app;", "takes away a right"},
		{"rules and rights of a table it creates", leaves + "CREATE TABLE n (id bigint PRIMARY KEY, a int);\n" +
			"ALTER TABLE n ADD CONSTRAINT n_a CHECK (a > 0);\nREVOKE UPDATE, DELETE ON n FROM ordertune_app;", ""},
		{"a right taken on another table", leaves + "CREATE TABLE n (id bigint PRIMARY KEY);\nREVOKE UPDATE ON t FROM ordertune_app;", "takes away a right"},
		{"breaking, and saying so", "ALTER TABLE t DROP COLUMN c;\nUPDATE schema_compat SET oldest_binary = 22;", ""},
		{"breaking, and naming another version", "ALTER TABLE t DROP COLUMN c;\nUPDATE schema_compat SET oldest_binary = 21;", "sets oldest_binary to 21"},
	} {
		got := compatProblems(22, tc.up)
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%s: problems %q, want none", tc.name, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%s: problems %q, want one saying %q", tc.name, got, tc.want)
		}
	}
}
