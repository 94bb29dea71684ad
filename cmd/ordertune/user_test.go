package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestUserCreate(t *testing.T) {
	url := pgtest.DB(t)
	const pw = "operator-chosen pw"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "admin_password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string // "" for success
	}{
		{"admin", []string{"user", "create", "--email", "Ops@Example.com", "--role", "admin"}, pw + "\n", ""},
		{"same email again", []string{"user", "create", "--email", "ops@example.com", "--role", "subscriber"}, pw + "\n", "exists"},
		{"bad role", []string{"user", "create", "--email", "x@example.com", "--role", "root"}, pw + "\n", "admin or subscriber"},
		{"short password", []string{"user", "create", "--email", "x@example.com", "--role", "admin"}, "short\n", "8 to 128"},
		{"no password", []string{"user", "create", "--email", "x@example.com", "--role", "admin"}, "", "no password"},
		// A one-shot container has no stdin to pipe into (docker-compose.yml).
		{"password file", []string{"user", "create", "--email", "file@example.com", "--role", "admin", "--password-file", pwFile}, "ignored stdin\n", ""},
		{"password file missing", []string{"user", "create", "--email", "y@example.com", "--role", "admin", "--password-file", filepath.Join(dir, "nope")}, pw + "\n", "--password-file"},
		{"password file empty", []string{"user", "create", "--email", "y@example.com", "--role", "admin", "--password-file", emptyFile}, pw + "\n", "no password in " + emptyFile},
		{"no email", []string{"user", "create", "--role", "admin"}, pw + "\n", "usage"},
		{"no subcommand", []string{"user"}, "", "usage"},
	}
	for _, tt := range tests {
		a, out, errOut := testApp(map[string]string{"DATABASE_URL": url, "ORDERTUNE_LOG_LEVEL": "debug"})
		a.stdin = strings.NewReader(tt.stdin)
		err := run(t.Context(), a, tt.args)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
		if strings.Contains(out.String()+errOut.String(), pw) {
			t.Errorf("%s: the password was printed", tt.name)
		}
	}

	pool, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	svc, err := auth.New(auth.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"ops@example.com", "file@example.com"} {
		res, err := svc.Login(context.Background(), email, pw, "")
		if err != nil {
			t.Fatalf("sign in with the created account %s: %v", email, err)
		}
		if res.User.Role != auth.Admin || res.MFA != auth.MFAEnroll {
			t.Errorf("created account %+v, mfa %q; want an admin who enrols at first sign-in", res.User, res.MFA)
		}
	}
	if _, err := svc.Login(context.Background(), "y@example.com", pw, ""); err == nil {
		t.Error("an account was created although its password file was missing or empty")
	}
}
