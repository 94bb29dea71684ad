package mailcatch

import (
	"strings"
	"testing"
)

// TestText reads the plain-text part of the shapes go-mail sends: a
// multipart/alternative message with a quoted-printable text part, and a
// single-part base64 one.
func TestText(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"alternative, quoted-printable", "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"Choose a new password: http://x/reset-password#token=3Dabc=\r\ndef\r\n" +
			"--b1\r\nContent-Type: text/html\r\n\r\n<p>no</p>\r\n--b1--\r\n",
			"Choose a new password: http://x/reset-password#token=abcdef"},
		{"single part, base64", "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n", "hello"},
		{"html only", "Content-Type: text/html\r\n\r\n<p>x</p>\r\n", ""},
		{"not a message", "\x00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.TrimSpace(Message{Data: []byte(tt.data)}.Text())
			if got != tt.want {
				t.Errorf("Text() = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzText: any bytes received over SMTP are read without a panic.
func FuzzText(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--a--\r\n"))
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n"))
	f.Add([]byte("Content-Type: multipart/alternative\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Message{Data: data}.Text()
		_ = Message{Data: data}.Header("Subject")
	})
}
