package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
)

// TestTOTPSteps walks the clock across a step: the current step's code
// works all through it; the previous step's only during the first
// TOTPPreviousStepGrace (5 s) of the current one; older and future codes
// never. Each case uses a fresh account, so the replay guard plays no part.
func TestTOTPSteps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		into   time.Duration // how far into the current step the clock is
		offset time.Duration // code's time relative to the clock
		ok     bool
	}{
		{"current step, at its start", 0, 0, true},
		{"current step, at its end", 29 * time.Second, 0, true},
		{"previous step, at the start of the next", 0, -30 * time.Second, true},
		{"previous step, 4.9 s into the next", 4900 * time.Millisecond, -30 * time.Second, true},
		{"previous step, 5 s into the next", 5 * time.Second, -30 * time.Second, false},
		{"previous step, 10 s into the next", 10 * time.Second, -30 * time.Second, false},
		{"previous step, 26 s into the next (a 56 s old code)", 26 * time.Second, -30 * time.Second, false},
		{"two steps back", 0, -60 * time.Second, false},
		{"next step", 10 * time.Second, 30 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			u, pw, secret := e.user(Subscriber)
			e.clock.Advance(tt.into) // the clock starts at a step boundary
			res, err := e.svc.Login(context.Background(), u.Email, pw, "")
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = e.svc.CompleteLogin(context.Background(), e.secret(res.SessionID), SecondFactor{Code: e.code(secret, tt.offset)}, "")
			if (err == nil) != tt.ok {
				t.Fatalf("CompleteLogin = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestTOTPCodeWorksOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, pw, secret := e.user(Subscriber)
	ctx := context.Background()
	step := func(code string) error {
		res, err := e.svc.Login(ctx, u.Email, pw, "")
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.svc.CompleteLogin(ctx, e.secret(res.SessionID), SecondFactor{Code: code}, "")
		return err
	}
	current := e.code(secret, 0)
	if err := step(current); err != nil {
		t.Fatalf("first use: %v", err)
	}
	wantCode(t, "same code again", step(current), errs.Unauthenticated)
	wantCode(t, "previous step's code after the current one was used", step(e.code(secret, -30*time.Second)), errs.Unauthenticated)
	e.clock.Advance(30 * time.Second)
	if err := step(e.code(secret, 0)); err != nil {
		t.Fatalf("next step's code: %v", err)
	}
}

// TestTOTPReplayGuardUnderConcurrency submits one code 20 times at once;
// the conditional UPDATE lets exactly one through.
func TestTOTPReplayGuardUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, _, secret := e.user(Subscriber)
	code := e.code(secret, 0)
	var wg sync.WaitGroup
	results := make(chan bool, 20)
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			var ok bool
			err := pgx.BeginFunc(context.Background(), e.svc.pool, func(tx pgx.Tx) error {
				var err error
				ok, err = e.svc.acceptTOTP(context.Background(), tx, u.ID, secret, code, false)
				return err
			})
			if err != nil {
				t.Error(err)
			}
			results <- ok
		})
	}
	close(start)
	wg.Wait()
	close(results)
	accepted := 0
	for ok := range results {
		if ok {
			accepted++
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of 20 concurrent submissions accepted, want exactly 1", accepted)
	}
}

func TestEnrolment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	pw := e.secret("enrol me please")
	u, err := e.svc.CreateUser(ctx, "", NewUser{Email: "enrol@example.com", Role: Subscriber, Password: pw}, "203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	res := e.passwordStep(u.Email, pw, "203.0.113.9")
	if res.MFA != MFAEnroll {
		t.Fatalf("mfa = %q, want enroll", res.MFA)
	}
	_, _, err = e.svc.CompleteLogin(ctx, res.SessionID, SecondFactor{Code: "123456"}, "")
	wantCode(t, "second step before enrolment", err, errs.MFARequired)
	_, _, err = e.svc.EnableTOTP(ctx, res.SessionID, "123456", "")
	wantCode(t, "enable before setup", err, errs.Conflict)

	en, err := e.svc.SetupTOTP(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.secret(en.Secret)
	uri, err := url.Parse(en.URI)
	if err != nil || uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Query().Get("secret") != en.Secret || uri.Query().Get("issuer") != "Ordertune" {
		t.Errorf("otpauth URI %q does not carry the secret and issuer", en.URI)
	}
	raw, ok := strings.CutPrefix(en.QRPNGData, "data:image/png;base64,")
	if !ok {
		t.Fatalf("qr_png is not a PNG data: URI: %.40s", en.QRPNGData)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("qr_png does not decode: %v", err)
	}

	var sealed []byte
	if err := e.svc.pool.QueryRow(ctx, `SELECT totp_pending_secret FROM users WHERE id = $1`, u.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(en.Secret)) || len(sealed) < len(en.Secret)+16 {
		t.Fatalf("the stored TOTP secret is not sealed")
	}

	_, _, err = e.svc.EnableTOTP(ctx, res.SessionID, e.secret("000000"), "")
	wantCode(t, "enable with a wrong code", err, errs.Unauthenticated)
	newID, codes, err := e.svc.EnableTOTP(ctx, res.SessionID, e.code(en.Secret, 0), "203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	e.secret(newID)
	for _, c := range codes {
		e.secret(c)
	}
	if len(codes) != RecoveryCodeCount {
		t.Fatalf("%d recovery codes, want %d", len(codes), RecoveryCodeCount)
	}
	if _, err := e.svc.Authenticate(ctx, res.SessionID); err == nil {
		t.Error("the password-only session id still works after enrolment")
	}
	p, err := e.svc.Authenticate(ctx, newID)
	if err != nil || !p.Full || !p.TOTPEnabled {
		t.Fatalf("after enrolment: principal %+v, err %v; want a full session", p, err)
	}
	_, err = e.svc.SetupTOTP(ctx, u.ID)
	wantCode(t, "setup once enabled", err, errs.Conflict)

	want := []string{"user.created", "login.password", "login.failure", "2fa.enabled", "login.success"}
	if diff := cmp.Diff(want, e.auditActions(u.ID)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestEnrolmentWithoutMasterKeyIsUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Sealer = nil })
	u, err := e.svc.CreateUser(context.Background(), "", NewUser{Email: "nokey@example.com", Role: Subscriber, Password: e.secret("password123")}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.SetupTOTP(context.Background(), u.ID)
	wantCode(t, "setup without a sealer", err, errs.Unavailable)
}

func TestCreateUserWithGivenTOTPSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	u, en, err := e.svc.CreateUserWithTOTP(context.Background(), NewUser{Email: "demo@example.com", Role: Admin, Password: e.secret("demo-password")}, secret)
	if err != nil {
		t.Fatal(err)
	}
	e.secret(secret)
	if en.Secret != secret || !u.TOTPEnabled || !strings.Contains(en.URI, "secret="+secret) {
		t.Fatalf("enrollment %+v, user %+v", en, u)
	}
	e.signIn(u, "demo-password", secret)
	_, _, err = e.svc.CreateUserWithTOTP(context.Background(), NewUser{Email: "demo2@example.com", Role: Admin, Password: "demo-password"}, "not base32!")
	wantCode(t, "bad secret", err, errs.Invalid)
}
