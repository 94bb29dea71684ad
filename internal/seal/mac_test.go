package seal

import "testing"

func TestMACAcrossARotation(t *testing.T) {
	old, err := GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	next, err := GenerateKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ParseRing(old)
	during, _ := ParseRing(next + "," + old)
	stranger := RandomRing("k1")

	id, mac := before.MAC("forward", []byte("msg"))
	if id != "k1" || !during.VerifyMAC(id, "forward", []byte("msg"), mac) {
		t.Fatal("a MAC by the old primary does not verify on a ring that rotated to a new one")
	}
	for _, tc := range []struct {
		name      string
		r         *Ring
		id, label string
		msg       string
	}{
		{"other message", during, id, "forward", "msh"},
		{"other label", during, id, "other", "msg"},
		{"unknown key id", during, "k9", "forward", "msg"},
		{"other ring, same id", stranger, id, "forward", "msg"},
	} {
		if tc.r.VerifyMAC(tc.id, tc.label, []byte(tc.msg), mac) {
			t.Errorf("%s: verified", tc.name)
		}
	}
}
