package auth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
)

// totpPeriod is the length of a TOTP step (RFC 6238's default, what every
// authenticator app assumes).
const totpPeriod = 30

// totpField is the AAD field name binding a sealed TOTP secret to its
// column's meaning; pending and active secrets share it so enabling moves
// the ciphertext without re-sealing it.
const totpField = "totp_secret"

// Enrollment is what an authenticator app needs: the base32 secret, the
// otpauth:// URI and the same URI as a QR code PNG in a data: URI.
type Enrollment struct {
	Secret    string
	URI       string
	QRPNGData string
}

func totpOpts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

// TOTPCode returns the 6-digit code of base32 secret at t, as an
// authenticator app shows it. The demo and tests use it to sign in.
func TOTPCode(secret string, t time.Time) (string, error) {
	code, err := totp.GenerateCodeCustom(secret, t, totpOpts())
	if err != nil {
		return "", fmt.Errorf("totp code: %w", err)
	}
	return code, nil
}

func (s *Service) errNoSealer() error {
	return errs.E(errs.Unavailable, "two-factor enrolment is unavailable: the server has no master key (ORDERTUNE_MASTER_KEYS)")
}

func (s *Service) sealSecret(userID, secret string) ([]byte, error) {
	if s.sealer == nil {
		return nil, s.errNoSealer()
	}
	b, err := s.sealer.Seal([]byte(secret), userID, totpField)
	if err != nil {
		return nil, internal("seal totp secret", err)
	}
	return b, nil
}

func (s *Service) openSecret(userID string, sealed []byte) ([]byte, error) {
	if s.sealer == nil {
		return nil, s.errNoSealer()
	}
	if len(sealed) == 0 {
		return nil, internal("open totp secret", errors.New("no secret stored"))
	}
	b, err := s.sealer.Open(sealed, userID, totpField)
	if err != nil {
		// A key missing from the ring, or a damaged row: the operator's
		// log says which; the user cannot fix it alone.
		return nil, &errs.Error{Code: errs.CredentialsUnavailable,
			Message: "the server cannot read this account's two-factor secret (its encryption keys changed); ask an admin",
			Err:     fmt.Errorf("open the totp secret of user %s with the key ring: %w", userID, err)}
	}
	return b, nil
}

// TOTPPreviousStepGrace is how long into a step the previous step's code
// is still accepted: long enough for a code typed as it rolled over, far
// shorter than the step itself, so an overheard code dies within seconds
// of its step (RFC 6238 §5.2 leaves the window to the verifier).
const TOTPPreviousStepGrace = 5 * time.Second

// totpSteps returns the steps whose codes are accepted at now: the
// current one and, during its first TOTPPreviousStepGrace, the previous.
func totpSteps(now time.Time) []int64 {
	step := now.Unix() / totpPeriod
	if now.Sub(time.Unix(step*totpPeriod, 0)) < TOTPPreviousStepGrace {
		return []int64{step, step - 1}
	}
	return []int64{step}
}

// acceptTOTP reports whether code is the code of an accepted step (see
// totpSteps) and that step is newer than the last one accepted. The
// conditional UPDATE is the replay guard: of any number of concurrent
// submissions of one code, exactly one moves totp_last_step forward.
func (s *Service) acceptTOTP(ctx context.Context, tx pgx.Tx, userID, secret, code string, enrolling bool) (bool, error) {
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return false, nil
	}
	for _, st := range totpSteps(s.now()) {
		want, err := TOTPCode(secret, time.Unix(st*totpPeriod, 0))
		if err != nil {
			return false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET totp_last_step = $2
			WHERE id = $1 AND totp_last_step < $2 AND totp_enabled = $3`, userID, st, !enrolling)
		if err != nil {
			return false, err
		}
		return tag.RowsAffected() == 1, nil
	}
	return false, nil
}

// newEnrollment makes a TOTP key for email, from secret (base32) when given
// or from fresh randomness.
func (s *Service) newEnrollment(email, secret string) (Enrollment, error) {
	opts := totp.GenerateOpts{Issuer: s.issuer, AccountName: email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: s.rand}
	if secret != "" {
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
		if err != nil || len(raw) < 10 {
			return Enrollment{}, errs.E(errs.Invalid, "the TOTP secret must be base32, at least 80 bits")
		}
		opts.Secret = raw
	}
	key, err := totp.Generate(opts)
	if err != nil {
		return Enrollment{}, fmt.Errorf("generate totp key: %w", err)
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrollment{}, fmt.Errorf("totp qr code: %w", err)
	}
	return Enrollment{
		Secret:    key.Secret(),
		URI:       key.URL(),
		QRPNGData: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
	}, nil
}

// SetupTOTP starts enrolment: it makes a new secret, keeps it sealed as
// pending until EnableTOTP sees its first code, and returns it for the
// authenticator app. Repeating it replaces the pending secret.
func (s *Service) SetupTOTP(ctx context.Context, userID string) (Enrollment, error) {
	var email string
	var enabled bool
	if err := s.pool.QueryRow(ctx, `SELECT email, totp_enabled FROM users WHERE id = $1`, userID).Scan(&email, &enabled); err != nil {
		return Enrollment{}, internal("totp setup", err)
	}
	if enabled {
		return Enrollment{}, errs.E(errs.Conflict, "two-factor authentication is already on")
	}
	if s.sealer == nil {
		return Enrollment{}, s.errNoSealer()
	}
	en, err := s.newEnrollment(email, "")
	if err != nil {
		return Enrollment{}, internal("totp setup", err)
	}
	sealed, err := s.sealSecret(userID, en.Secret)
	if err != nil {
		return Enrollment{}, err
	}
	if _, err := s.pool.Exec(ctx, `UPDATE users SET totp_pending_secret = $2, updated_at = $3 WHERE id = $1`, userID, sealed, s.now()); err != nil {
		return Enrollment{}, internal("totp setup", err)
	}
	return en, nil
}

// EnableTOTP finishes enrolment with the first code of the pending secret:
// 2FA goes on, ten recovery codes are made (returned once), and the
// session becomes fully authenticated under a new id, which it returns.
func (s *Service) EnableTOTP(ctx context.Context, sessionID, code, ip string) (string, []string, error) {
	r, err := s.loadSession(ctx, sessionID)
	if err != nil {
		return "", nil, err
	}
	var pending []byte
	var enabled bool
	if err := s.pool.QueryRow(ctx, `SELECT totp_pending_secret, totp_enabled FROM users WHERE id = $1`, r.userID).Scan(&pending, &enabled); err != nil {
		return "", nil, internal("enable totp", err)
	}
	if enabled {
		return "", nil, errs.E(errs.Conflict, "two-factor authentication is already on")
	}
	if pending == nil {
		return "", nil, errs.E(errs.Conflict, "call POST /me/totp/setup first")
	}
	secret, err := s.openSecret(r.userID, pending)
	if err != nil {
		return "", nil, err
	}
	end, err := s.beginAttempt(r.email)
	if err != nil {
		return "", nil, err
	}
	defer end()
	if err := s.checkThrottle(ctx, r.email, ip); err != nil {
		return "", nil, err
	}
	codes, hashes, err := s.newRecoveryCodes(ctx)
	if err != nil {
		return "", nil, internal("enable totp", err)
	}
	now := s.now()
	var newID string
	accepted := false
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if accepted, err = s.acceptTOTP(ctx, tx, r.userID, string(secret), strings.TrimSpace(code), true); err != nil || !accepted {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL,
			totp_enabled = true, updated_at = $2 WHERE id = $1`, r.userID, now); err != nil {
			return err
		}
		if err := replaceRecoveryCodes(ctx, tx, r.userID, hashes, now); err != nil {
			return err
		}
		if newID, err = s.rotateSession(ctx, tx, sessionID, r, ip); err != nil {
			return err
		}
		if err := resetAccount(ctx, tx, r.email); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, UserID: r.userID, ActorID: r.userID, IP: ip, Action: "2fa.enabled"}); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, UserID: r.userID, ActorID: r.userID, IP: ip,
			Action: "login.success", Details: map[string]any{"second_factor": "totp_enrolment"}})
	})
	if err != nil {
		return "", nil, internal("enable totp", err)
	}
	if !accepted {
		if err := s.recordFailure(ctx, failure{email: r.email, userID: r.userID, ip: ip, stage: "totp_enrolment", reason: "wrong or used code"}); err != nil {
			return "", nil, err
		}
		return "", nil, errs.E(errs.Unauthenticated, "the code is wrong or was already used")
	}
	return newID, codes, nil
}

// CreateUserWithTOTP creates an account with 2FA already on, using the
// base32 secret when given or a new one; the demo seeds its accounts with
// it and prints the returned secret. No recovery codes are made.
func (s *Service) CreateUserWithTOTP(ctx context.Context, nu NewUser, secret string) (User, Enrollment, error) {
	if s.sealer == nil {
		return User{}, Enrollment{}, s.errNoSealer()
	}
	var u User
	var en Enrollment
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if u, err = s.createUser(ctx, tx, "", nu, ""); err != nil {
			return err
		}
		if en, err = s.newEnrollment(u.Email, secret); err != nil {
			return err
		}
		sealed, err := s.sealSecret(u.ID, en.Secret)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET totp_secret = $2, totp_enabled = true WHERE id = $1`, u.ID, sealed); err != nil {
			return err
		}
		u.TOTPEnabled = true
		return audit.Record(ctx, tx, audit.Event{At: s.now(), UserID: u.ID, Action: "2fa.enabled", Details: map[string]any{"via": "seed"}})
	})
	if err != nil {
		return User{}, Enrollment{}, internal("create user with totp", err)
	}
	return u, en, nil
}
