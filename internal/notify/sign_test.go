package notify_test

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/notify"
)

// TestSignStandardWebhooksExample pins Sign to the example published with
// the Standard Webhooks reference libraries.
func TestSignStandardWebhooksExample(t *testing.T) {
	got, err := notify.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://hooks.example.com/ordertune", false, true},
		{"https://93.184.215.14/x", false, true},
		{"http://hooks.example.com/x", false, false},
		{"http://hooks.example.com/x", true, true},
		{"https://127.0.0.1/x", false, false},
		{"https://127.0.0.1/x", true, true},
		{"https://169.254.169.254/", false, false},
		{"https://[fe80::1]/", false, false},
		{"https://[::ffff:10.0.0.1]/", false, false},
		{"https://100.64.1.1/", false, false},
		{"https://0.0.0.0/", false, false},
		{"https://user:pw@example.com/", false, false},
		{"ftp://example.com/", true, false},
		{"/relative", true, false},
		{"https://example.com/#frag", false, false},
		{"https://" + strings.Repeat("a", 2050) + ".com/", false, false},
	} {
		err := notify.CheckURL(c.url, c.allowPrivate)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%.60s, allowPrivate=%v) = %v, want ok=%v", c.url, c.allowPrivate, err, c.ok)
		}
	}
}

// FuzzCheckURL: whatever CheckURL accepts without allow-private is an
// https URL with a host and no credentials whose address literal, if any,
// is public.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://example.com/h", "https://127.0.0.1/", "https://[::1]:443/", "http://x", "https://0x7f.1/",
		"https://2130706433/", "https://[::ffff:127.0.0.1]/", "https://%31%32%37.0.0.1/", "https://a@b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if notify.CheckURL(raw, false) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			t.Fatalf("accepted %q", raw)
		}
		if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				t.Fatalf("accepted the private address %q", raw)
			}
		}
	})
}
