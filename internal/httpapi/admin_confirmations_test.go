package httpapi

import (
	"bytes"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/trading"
)

func TestAdminConfirmationLog(t *testing.T) {
	e := newTradeEnv(t)
	var signals []trading.Signal
	for _, tk := range []string{"AAPL", "MSFT", "NVDA"} {
		_, body := e.call(t, e.admin, http.MethodPost, "/signals", newSignalBody(func(m map[string]any) { m["ticker"] = tk }))
		signals = append(signals, decodeAs[trading.Signal](t, body))
	}
	// A confirms all three, B confirms AAPL.
	for i, g := range signals {
		if st, body := e.call(t, e.a, http.MethodPost, "/signals/"+g.ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", "a"+g.ID); st != 201 {
			t.Fatalf("confirm %d = %d %s", i, st, body)
		}
	}
	if st, body := e.call(t, e.b, http.MethodPost, "/signals/"+signals[0].ID+"/confirm", map[string]string{"side": "BUY"}, "Idempotency-Key", "b"); st != 201 {
		t.Fatalf("B confirm = %d %s", st, body)
	}
	emailOf := func(id string) string {
		t.Helper()
		var email string
		if err := e.pool.QueryRow(t.Context(), `SELECT email FROM users WHERE id = $1`, id).Scan(&email); err != nil {
			t.Fatal(err)
		}
		return email
	}
	type row struct{ User, Ticker string }
	list := func(q string) []row {
		t.Helper()
		st, body := e.call(t, e.admin, http.MethodGet, "/admin/confirmations"+q, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s = %d %s", q, st, body)
		}
		var out []row
		for _, c := range decodeAs[page[trading.Confirmation]](t, body).Items {
			u := "A"
			if c.UserID == e.b.id {
				u = "B"
			}
			out = append(out, row{u, c.Ticker})
		}
		return out
	}
	tests := []struct {
		query string
		want  []row
	}{
		{"", []row{{"B", "AAPL"}, {"A", "NVDA"}, {"A", "MSFT"}, {"A", "AAPL"}}},
		{"?user=" + e.b.id, []row{{"B", "AAPL"}}},
		{"?ticker=aapl", []row{{"B", "AAPL"}, {"A", "AAPL"}}},
		{"?status=submitted&ticker=MSFT", []row{{"A", "MSFT"}}},
		{"?status=filled", nil},
		{"?from=2000-01-01&to=2000-12-31", nil},
		{"?from=2000-01-01", []row{{"B", "AAPL"}, {"A", "NVDA"}, {"A", "MSFT"}, {"A", "AAPL"}}},
		// Part of an e-mail address, in any case, is a search.
		{"?user=" + url.QueryEscape(strings.ToUpper(strings.Split(emailOf(e.b.id), "@")[0])), []row{{"B", "AAPL"}}},
		{"?user=nobody", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(tt.query)); diff != "" {
			t.Errorf("GET /admin/confirmations%s (-want +got):\n%s", tt.query, diff)
		}
	}
	for _, bad := range []string{"?status=nope", "?from=yesterday", "?limit=0x", "?cursor=bm9wZQ", "?format=xml", "?from=2026-02-01&to=2026-01-01"} {
		if st, body := e.call(t, e.admin, http.MethodGet, "/admin/confirmations"+bad, nil); st < 400 || st >= 500 {
			t.Errorf("GET %s = %d %s, want a 4xx", bad, st, body)
		}
	}
	// Pages of two cover the four rows once.
	var seen []string
	cursor := ""
	for i := 0; i < 3; i++ {
		_, body := e.call(t, e.admin, http.MethodGet, "/admin/confirmations?limit=2"+cursor, nil)
		p := decodeAs[page[trading.Confirmation]](t, body)
		for _, c := range p.Items {
			seen = append(seen, c.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *p.NextCursor
	}
	if len(seen) != 4 {
		t.Errorf("paging saw %d rows, want 4", len(seen))
	}

	// CSV export.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/admin/confirmations?format=csv&user="+e.a.id, nil)
	req.AddCookie(&http.Cookie{Name: "ordertune_session", Value: e.admin.cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("CSV headers: %q %q", ct, resp.Header.Get("Content-Disposition"))
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("\uFEFF")) {
		t.Error("the CSV does not start with a UTF-8 byte order mark")
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\uFEFF")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || strings.Join(recs[0][:3], ",") != "id,created_at,updated_at" {
		t.Fatalf("CSV has %d records (header %v), want header + 3", len(recs), recs[0])
	}
	var tickers []string
	for _, r := range recs[1:] {
		tickers = append(tickers, r[6]+"/"+r[14])
		if want := emailOf(e.a.id); r[4] != want {
			t.Errorf("CSV user_email = %q, want %q", r[4], want)
		}
	}
	if diff := cmp.Diff([]string{"NVDA/submitted", "MSFT/submitted", "AAPL/submitted"}, tickers); diff != "" {
		t.Errorf("CSV rows (-want +got):\n%s", diff)
	}
}

func TestCSVSafe(t *testing.T) {
	tests := map[string]string{"=HYPERLINK(1)": "'=HYPERLINK(1)", "+1+1": "'+1+1", "-12.5": "-12.5", "@x": "'@x", "plain": "plain", "": ""}
	for in, want := range tests {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
