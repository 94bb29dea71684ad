package ibkrsim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseWSCommand(t *testing.T) {
	tests := []struct {
		in      string
		want    wsCommand
		wantErr bool
	}{
		{in: "tic", want: wsCommand{topic: "tic"}},
		{in: "ech+hb", want: wsCommand{topic: "ech"}},
		{in: "sor+{}", want: wsCommand{topic: "sor"}},
		{in: "uor+{}", want: wsCommand{topic: "uor"}},
		{in: "sor", want: wsCommand{topic: "sor"}},
		{in: `smd+265598+{"fields":["31","84"]}`, want: wsCommand{topic: "smd", conid: 265598, fields: []string{"31", "84"}}},
		{in: `smd+265598+{"fields":[31,86]}`, want: wsCommand{topic: "smd", conid: 265598, fields: []string{"31", "86"}}},
		{in: `smd+265598`, want: wsCommand{topic: "smd", conid: 265598, fields: []string{"31", "84", "86"}}},
		{in: `umd+265598+{}`, want: wsCommand{topic: "umd", conid: 265598}},
		{in: `smd+abc+{}`, wantErr: true},
		{in: `smd+-1+{}`, wantErr: true},
		{in: `smd+1+{"fields":[true]}`, wantErr: true},
		{in: `smd+1+{nope`, wantErr: true},
		{in: `sorx`, wantErr: true},
		{in: `hello`, wantErr: true},
		{in: ``, wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseWSCommand([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(wsCommand{})); diff != "" && !tc.wantErr {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
}

// FuzzParseWSCommand: no input panics, and what parses is usable.
func FuzzParseWSCommand(f *testing.F) {
	for _, s := range []string{"tic", "sor+{}", `smd+265598+{"fields":["31"]}`, "umd+1+{}", "smd+1+", "ech+hb", "smd++{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cmd, err := parseWSCommand(msg)
		if err != nil {
			return
		}
		switch cmd.topic {
		case "smd":
			if cmd.conid <= 0 || len(cmd.fields) == 0 || len(cmd.fields) > wsMaxFields {
				t.Fatalf("%q parsed to %+v", msg, cmd)
			}
		case "umd":
			if cmd.conid <= 0 {
				t.Fatalf("%q parsed to %+v", msg, cmd)
			}
		case "tic", "ech", "sor", "uor":
		default:
			t.Fatalf("%q parsed to topic %q", msg, cmd.topic)
		}
	})
}
