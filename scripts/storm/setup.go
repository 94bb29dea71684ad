package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/argon2"

	"github.com/ordertune/ordertune/internal/auth"
	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
)

// tenant is one subscriber of the storm: a user with TOTP on, a sealed
// paper connection to its own simulated consumer and account, a position
// size of one share and a signed-in session (its cookie).
type tenant struct {
	id, cookie string
	i          int
}

// world is what the set-up made: the key ring the server must be given,
// the tenants, the admin's API token and the simulator's consumers FILE.
type world struct {
	keys      string // ORDERTUNE_MASTER_KEYS
	tenants   []tenant
	token     string // the admin's API token, scope signals:write
	consumers string // path of the consumers FILE
}

// consumerKey is tenant i's consumer key: nine letters A-Z, unique per i.
func consumerKey(i int) string {
	b := []byte("STAAAAAAA")
	for p := len(b) - 1; i > 0 && p >= 2; p-- {
		b[p] = 'A' + byte(i%26)
		i /= 26
	}
	return string(b)
}

// setUp writes n tenants directly into the database at url in bulk (COPY),
// sealing their TOTP secrets and IBKR credentials with the product's own
// code (internal/seal, broker.SealConnection and SealBulkConnection), and the simulator's
// consumers FILE into dir. With history, every tenant also has a
// confirmation of the day before (see yesterday). Nothing here is
// measured.
func setUp(ctx context.Context, url, dir string, n int, history bool) (*world, error) {
	keySpec, err := seal.GenerateKey("storm")
	if err != nil {
		return nil, err
	}
	ring, err := seal.ParseRing(keySpec)
	if err != nil {
		return nil, err
	}
	// RSA key generation is slow: the consumers share one key pair, which
	// changes nothing in the work of a handshake.
	sigKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	encKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	// Nobody signs in with a password here; one argon2id hash serves all.
	salt := make([]byte, 16)
	rand.Read(salt)
	pw := argon2.IDKey([]byte(rand.Text()), salt, 1, 19*1024, 1, 32)
	pwHash := fmt.Sprintf("$argon2id$v=%d$m=%d,t=1,p=1$%s$%s", argon2.Version, 19*1024,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(pw))

	w := &world{keys: keySpec, tenants: make([]tenant, n), consumers: filepath.Join(dir, "consumers.json")}
	consumers := make([]ibkrsim.Consumer, n)
	users := make([][]any, n)
	conns := make([][]any, n)
	sessions := make([][]any, n)
	now := time.Now().UTC()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	workers := runtime.GOMAXPROCS(0)
	for wk := range workers {
		wg.Go(func() {
			for i := wk; i < n; i += workers {
				if err := setUpTenant(ring, sigKey, encKey, pwHash, now, i, w, consumers, users, conns, sessions); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	data, err := json.Marshal(consumers)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.consumers, data, 0o600); err != nil {
		return nil, err
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"},
			[]string{"id", "email", "role", "password_hash", "totp_secret", "totp_enabled", "created_at", "updated_at"},
			pgx.CopyFromRows(users)); err != nil {
			return fmt.Errorf("copy users: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"broker_connections"},
			[]string{"user_id", "mode", "consumer_key", "access_token", "realm", "signature_key", "encryption_key",
				"access_token_secret", "dh_params", "account_id", "account_id_masked", "status", "created_at", "updated_at"},
			pgx.CopyFromRows(conns)); err != nil {
			return fmt.Errorf("copy broker_connections: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sessions"},
			[]string{"id_hash", "user_id", "full_auth", "created_at", "last_seen_at", "ip"},
			pgx.CopyFromRows(sessions)); err != nil {
			return fmt.Errorf("copy sessions: %w", err)
		}
		for _, q := range []string{
			`INSERT INTO broker_settings (user_id, active_mode, updated_at) SELECT user_id, 'paper', $1 FROM broker_connections`,
			`INSERT INTO position_sizes (user_id, mode, value, updated_at) SELECT id, 'shares', 1, $1 FROM users WHERE role = 'subscriber'`,
		} {
			if _, err := tx.Exec(ctx, q, now); err != nil {
				return err
			}
		}
		if history {
			if err := yesterday(ctx, tx, now); err != nil {
				return fmt.Errorf("yesterday's confirmations: %w", err)
			}
		}
		adminID := newUUID()
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, email, role, password_hash, totp_enabled, created_at, updated_at)
			VALUES ($1, 'storm-admin@bench.invalid', 'admin', $2, false, $3, $3)`, adminID, pwHash, now); err != nil {
			return err
		}
		w.token = auth.TokenPrefix + rand.Text()
		h := sha256.Sum256([]byte(w.token))
		_, err := tx.Exec(ctx, `INSERT INTO api_tokens (token_hash, name, scopes, created_by, created_at)
			VALUES ($1, 'storm', $2, $3, $4)`, h[:], []string{auth.ScopeSignalsWrite}, adminID, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	// As autovacuum leaves tables overnight: statistics, visibility map
	// and free space map.
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return nil, err
	}
	return w, nil
}

// yesterday gives every subscriber a confirmation of the day before now,
// with its status history and in-app notifications: the rows a market-open
// storm meets on any day but the database's first (an empty table is
// another workload: every insert on its last few pages, plans made for no
// rows, pages without free space). The order was cancelled at IBKR
// before it filled, so it leaves no position and no fill. Its audit rows
// are left out: the sealer would be sealing them during the storms.
func yesterday(ctx context.Context, tx pgx.Tx, now time.Time) error {
	day := now.Add(-24 * time.Hour)
	sig := newUUID()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO signals (id, ticker, strategy, kind, signal_date, entry_date, ref_close, rsi2, return_2d, entry_mode, expires_at, created_at)
			VALUES ($1, 'QCOM', 'I', 'entry', $2::date - 1, $2::date, 160.5, 4.5, -0.03, 'next_open_market', $2, $2)`, []any{sig, day}},
		{`INSERT INTO confirmations (id, user_id, signal_id, side, idempotency_key, request_hash, ticker, quantity, order_type, tif,
				ref_price, mode, account_id_masked, status, broker_order_id, broker_status, created_at, updated_at)
			SELECT gen_random_uuid(), u.id, $1, 'BUY', 'yesterday', '\x00', 'QCOM', 1, 'MKT', 'OPG', 160.5, 'paper', c.account_id_masked,
				'pending', NULL, NULL, $2, $2
			FROM users u JOIN broker_connections c ON c.user_id = u.id WHERE u.role = 'subscriber'`, []any{sig, day}},
		// Recorded as every outcome is, by an update: the old row
		// versions are what leaves the pages' free space, once vacuumed,
		// that the storm's inserts find.
		{`UPDATE confirmations SET status = 'cancelled', broker_order_id = '1', broker_status = 'Cancelled', updated_at = $1`, []any{day}},
		{`INSERT INTO confirmation_events (confirmation_id, at, status, message)
			SELECT c.id, c.created_at, s, 'yesterday' FROM confirmations c, unnest(ARRAY['pending', 'submitted', 'cancelled']) s`, nil},
		{`INSERT INTO notification_events (id, user_id, type, data, created_at, in_app)
			SELECT gen_random_uuid(), c.user_id, 'order.' || s, '{}', c.created_at, true
			FROM confirmations c, unnest(ARRAY['submitted', 'cancelled']) s`, nil},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return nil
}

// setUpTenant makes tenant i's consumer and rows.
func setUpTenant(ring *seal.Ring, sigKey, encKey *rsa.PrivateKey, pwHash string, now time.Time, i int,
	w *world, consumers []ibkrsim.Consumer, users, conns, sessions [][]any) error {
	account := fmt.Sprintf("DU%07d", 1000000+i)
	cons, creds, err := ibkrsim.Register(ibkrsim.RegisterOptions{AccountID: account, ConsumerKey: consumerKey(i),
		SignatureKey: sigKey, EncryptionKey: encKey})
	if err != nil {
		return err
	}
	consumers[i] = cons
	id := newUUID()
	totp, err := ring.Seal([]byte(rand.Text()), id, "totp_secret")
	if err != nil {
		return err
	}
	users[i] = []any{id, fmt.Sprintf("storm-%05d@bench.invalid", i), "subscriber", pwHash, totp, true, now, now}
	// Tenant 0's set is checked as Save checks one; the rest are made the
	// same way and sealed without the costly checks (SealBulkConnection):
	// a broken one would fail the warm-up's handshake.
	sealConn := broker.SealBulkConnection
	if i == 0 {
		sealConn = broker.SealConnection
	}
	sc, err := sealConn(ring, id, trading.Paper, broker.Input{
		ConsumerKey: creds.ConsumerKey, AccessToken: creds.AccessToken, AccessTokenSecret: creds.AccessTokenSecret,
		SignatureKeyPEM: creds.SignaturePrivateKeyPEM, EncryptionKeyPEM: creds.EncryptionPrivateKeyPEM,
		DHParams: creds.DHPrimeHex, AccountID: creds.AccountID,
	})
	if err != nil {
		return fmt.Errorf("tenant %d: %w", i, err)
	}
	conns[i] = []any{id, "paper", sc.ConsumerKey, sc.AccessToken, sc.Realm, sc.SignatureKey, sc.EncryptionKey,
		sc.AccessTokenSecret, sc.DHParams, sc.AccountID, sc.AccountIDMasked, "connected", now, now}
	cookie := rand.Text() + rand.Text()
	h := sha256.Sum256([]byte(cookie))
	sessions[i] = []any{h[:], id, true, now, now, ""}
	w.tenants[i] = tenant{id: id, cookie: cookie, i: i}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
