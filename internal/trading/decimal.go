package trading

import (
	"math/big"
	"regexp"
	"strings"

	"github.com/ordertune/ordertune/internal/ids"
)

// Money and prices are decimal strings end to end: parsed into exact
// rationals (math/big.Rat) for arithmetic, stored as PostgreSQL numeric, and
// read back as numeric::text. A float never touches them.

// decimalRE is what clients may send: an optional minus, up to 12 integer
// digits and up to 6 decimals.
var decimalRE = regexp.MustCompile(`^-?[0-9]{1,12}(\.[0-9]{1,6})?$`)

// parseDecimal parses a decimal string, reporting whether it is well formed.
func parseDecimal(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if !decimalRE.MatchString(s) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// fitsDigits reports whether |r| < 10^digits, so that r fits a numeric
// column with that many integer digits.
func fitsDigits(r *big.Rat, digits int64) bool {
	limit := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(digits), nil))
	return new(big.Rat).Abs(r).Cmp(limit) < 0
}

// floorDiv returns floor(a / b) for positive a and b, or 0 when it does not
// fit an int64.
func floorDiv(a, b *big.Rat) int64 {
	q := new(big.Rat).Quo(a, b)
	n := new(big.Int).Quo(q.Num(), q.Denom()) // truncation = floor for q >= 0
	if !n.IsInt64() {
		return 0
	}
	return n.Int64()
}

// formatDecimal renders r with exactly places decimals (rounded half away
// from zero, as big.Rat.FloatString does).
func formatDecimal(r *big.Rat, places int) string {
	return r.FloatString(places)
}

// trimDecimal drops trailing zeros of a numeric's text ("187.250000" →
// "187.25", "10.0000" → "10").
func trimDecimal(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// trimPtr is trimDecimal for a nullable numeric.
func trimPtr(s *string) *string {
	if s == nil {
		return nil
	}
	t := trimDecimal(*s)
	return &t
}

// validID reports whether id is a UUID; anything else cannot name a row,
// so it is "not found" without a query.
func validID(id string) bool { return ids.Valid(id) }

// ratInt returns n as a rational.
func ratInt(n int64) *big.Rat { return new(big.Rat).SetInt64(n) }

// moneyPtr is trimDecimal for a nullable amount of money, keeping at
// least two decimals ("1.000000" → "1.00", "1.115000" → "1.115").
func moneyPtr(s *string) *string {
	if s == nil {
		return nil
	}
	t := trimDecimal(*s)
	whole, frac, _ := strings.Cut(t, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	t = whole + "." + frac
	return &t
}
