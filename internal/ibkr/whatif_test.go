package ibkr

import (
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseWhatIf(t *testing.T) {
	tests := []struct {
		name string
		body string
		want WhatIf
		err  bool
	}{
		{"figures", `{"amount":{"amount":"1,866.50 USD (10 Shares)","commission":"1 USD","total":"1,867.50 USD"},
			"equity":{"current":"1,000,000","change":"-1","after":"999,999"},
			"initial":{"current":"0","change":"933.25","after":"933.25"},
			"maintenance":{"current":"0","change":"466.63","after":"466.63"},"warn":null,"error":null}`,
			WhatIf{Commission: "1", InitialMarginChange: "933.25", EquityWithLoanAfter: "999999"}, false},
		{"negative change and warnings", `{"amount":{"commission":"1.05 USD"},"equity":{"after":"12,345.67"},"initial":{"change":"-1,234.5"},
			"warn":"21/You are trying to submit an order without having market data.\nOrder size exceeds 5% of the average volume"}`,
			WhatIf{Commission: "1.05", InitialMarginChange: "-1234.5", EquityWithLoanAfter: "12345.67",
				Warnings: []string{"You are trying to submit an order without having market data.", "Order size exceeds 5% of the average volume"}}, false},
		{"refusal", `{"amount":null,"error":"No trading permissions."}`, WhatIf{Refusal: "No trading permissions."}, false},
		{"not a number", `{"amount":{"commission":"n/a"},"equity":{"after":"1"},"initial":{"change":"1"}}`, WhatIf{}, true},
		{"missing figures", `{"amount":{"commission":"1 USD"}}`, WhatIf{}, true},
		{"bad separators", `{"amount":{"commission":",1"},"equity":{"after":"1"},"initial":{"change":"1"}}`, WhatIf{}, true},
		{"not json", `<html>`, WhatIf{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWhatIf([]byte(tt.body))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

var decimalText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

func FuzzParseWhatIf(f *testing.F) {
	f.Add([]byte(`{"amount":{"commission":"1 USD"},"equity":{"after":"999,999"},"initial":{"change":"-1,234.5"},"warn":"21/x\ny"}`))
	f.Add([]byte(`{"error":"No trading permissions."}`))
	f.Add([]byte(`{"amount":{"commission":"1,2,3"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := parseWhatIf(body)
		if err != nil {
			return
		}
		if w.Refusal != "" {
			return
		}
		// Every figure handed on is a plain decimal.
		for _, v := range []string{w.Commission, w.InitialMarginChange, w.EquityWithLoanAfter} {
			if !decimalText.MatchString(v) {
				t.Fatalf("figure %q from %q", v, body)
			}
		}
	})
}
