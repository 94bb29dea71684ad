package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/seal"
)

// The sealed columns of broker_connections. Each name is also the field
// name in the ciphertext's associated data, with the user id and the mode:
// internal/rewrap lists the same columns to re-seal them under a new key.
const (
	fieldSignatureKey      = "signature_key"
	fieldEncryptionKey     = "encryption_key"
	fieldAccessTokenSecret = "access_token_secret"
	fieldDHParams          = "dh_params"
	fieldAccountID         = "account_id"
)

// SealedFields lists the sealed columns of broker_connections, whose
// associated data is (user id, column name, mode).
func SealedFields() []string {
	return []string{fieldSignatureKey, fieldEncryptionKey, fieldAccessTokenSecret, fieldDHParams, fieldAccountID}
}

// aad is the associated data of a sealed broker field: a ciphertext opens
// only in the row (user, mode) and the column it was sealed for.
func aad(userID string, mode Mode, field string) []string {
	return []string{userID, field, string(mode)}
}

// parseInput checks in with the IBKR client's parsers and reports every
// problem under the REST field names.
func parseInput(in Input) (*ibkr.Credentials, error) {
	creds, err := ibkr.ParseCredentials(credentialsInput(in))
	if err == nil {
		return creds, nil
	}
	var ce *ibkr.CredentialsError
	if !errors.As(err, &ce) {
		return nil, errs.Wrap(err, errs.Invalid, "the credentials could not be checked")
	}
	fields := make([]errs.FieldError, 0, len(ce.FieldErrors))
	for _, fe := range ce.FieldErrors {
		fields = append(fields, errs.FieldError{Field: restField(fe.Field), Message: fe.Message})
	}
	return nil, errs.Fields("the IBKR credentials are not valid", fields...)
}

// credentialsInput is in in the IBKR client's terms.
func credentialsInput(in Input) ibkr.CredentialsInput {
	ci := ibkr.CredentialsInput{
		ConsumerKey:             in.ConsumerKey,
		AccessToken:             in.AccessToken,
		AccessTokenSecret:       in.AccessTokenSecret,
		SignaturePrivateKeyPEM:  in.SignatureKeyPEM,
		EncryptionPrivateKeyPEM: in.EncryptionKeyPEM,
		AccountID:               in.AccountID,
	}
	if strings.Contains(in.DHParams, "-----BEGIN") {
		ci.DHParamPEM = in.DHParams
	} else {
		ci.DHPrimeHex = in.DHParams
	}
	return ci
}

// restField maps the IBKR client's field names to the REST API's.
func restField(f string) string {
	switch f {
	case "signature_private_key_pem":
		return "signature_key_pem"
	case "encryption_private_key_pem":
		return "encryption_key_pem"
	case "dh_param_pem", "dh_prime_hex":
		return "dh_params"
	}
	return f
}

// sealedRow is what a saved connection holds for the session cache and
// Test Connection: the clear columns and the still-sealed secrets.
type sealedRow struct {
	mode                                  Mode
	consumerKey, accessToken, realm       string
	signatureKey, encryptionKey, atSecret []byte
	dhParams, accountID                   []byte
}

const selectSealed = `SELECT mode, consumer_key, access_token, realm, signature_key, encryption_key,
	access_token_secret, dh_params, account_id FROM broker_connections`

func scanSealed(row pgx.Row) (sealedRow, error) {
	var r sealedRow
	var mode string
	err := row.Scan(&mode, &r.consumerKey, &r.accessToken, &r.realm, &r.signatureKey, &r.encryptionKey,
		&r.atSecret, &r.dhParams, &r.accountID)
	r.mode = Mode(mode)
	return r, err
}

// opened is a credential set with its secrets decrypted. Drop it (wipe)
// as soon as the handshake or test is done.
type opened struct {
	input Input
	bufs  [][]byte
}

// wipe zeroes the decrypted buffers; the strings made from them become
// unreachable when the caller drops the value.
func (o *opened) wipe() {
	for _, b := range o.bufs {
		clear(b)
	}
	o.bufs = nil
	o.input = Input{}
}

// credentialsUnavailable is the answer when a saved ciphertext does not
// open: the user is told to enter the credentials again; the cause, for
// the operator's log, names the user, field and the key id that sealed it
// (a key missing from ORDERTUNE_MASTER_KEYS, or a damaged or moved row).
func credentialsUnavailable(userID string, mode Mode, field string, ct []byte, err error) error {
	keyID, ok := seal.KeyID(ct)
	if !ok {
		keyID = "unreadable header"
	}
	return &errs.Error{Code: errs.CredentialsUnavailable,
		Message: fmt.Sprintf("your saved %s IBKR credentials can no longer be read by the server (its encryption keys changed); enter them again under Settings → Broker", mode),
		Err:     fmt.Errorf("open %s of user %s (%s), sealed with key %q, with the key ring: %w", field, userID, mode, keyID, err)}
}

// open decrypts a sealed row for userID.
func (s *Service) open(userID string, r sealedRow) (*opened, error) {
	o := &opened{input: Input{ConsumerKey: r.consumerKey, AccessToken: r.accessToken}}
	get := func(field string, ct []byte) (string, error) {
		if ct == nil {
			return "", nil
		}
		b, err := s.ring.Open(ct, aad(userID, r.mode, field)...)
		if err != nil {
			return "", credentialsUnavailable(userID, Mode(r.mode), field, ct, err)
		}
		o.bufs = append(o.bufs, b)
		return string(b), nil
	}
	var err error
	for _, f := range []struct {
		name string
		ct   []byte
		dst  *string
	}{
		{fieldSignatureKey, r.signatureKey, &o.input.SignatureKeyPEM},
		{fieldEncryptionKey, r.encryptionKey, &o.input.EncryptionKeyPEM},
		{fieldAccessTokenSecret, r.atSecret, &o.input.AccessTokenSecret},
		{fieldDHParams, r.dhParams, &o.input.DHParams},
		{fieldAccountID, r.accountID, &o.input.AccountID},
	} {
		if *f.dst, err = get(f.name, f.ct); err != nil {
			o.wipe()
			return nil, err
		}
	}
	return o, nil
}

// loadSealed reads the saved connection (user, mode).
func (s *Service) loadSealed(ctx context.Context, userID string, mode Mode) (sealedRow, error) {
	r, err := scanSealed(s.pool.QueryRow(ctx, selectSealed+` WHERE user_id = $1 AND mode = $2`, userID, string(mode)))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errs.E(errs.NotFound, "no %s IBKR connection is saved", mode)
	}
	if err != nil {
		return r, fmt.Errorf("load %s connection: %w", mode, err)
	}
	return r, nil
}

// activeModeSQL is the user's active mode ($1 is the user) as activeModeTx
// reads it, for a statement that needs it in the same snapshot.
const activeModeSQL = `coalesce((SELECT active_mode FROM broker_settings WHERE user_id = $1), 'paper')`

// activeModeTx returns the user's active mode (the one set, else paper)
// and whether one was set.
func activeModeTx(ctx context.Context, q pgx.Tx, userID string) (Mode, bool, error) {
	var m string
	err := q.QueryRow(ctx, `SELECT active_mode FROM broker_settings WHERE user_id = $1`, userID).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return Paper, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return Mode(m), true, nil
}

// inTx runs fn in a transaction; the exported method that calls it owns it.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// Actor is who makes a change, for the audit trail.
type Actor struct {
	// UserID is the acting account (the user themself, or an admin).
	UserID string
	// IP is the client's address.
	IP string
}

func (s *Service) record(ctx context.Context, tx pgx.Tx, userID string, actor Actor, action string, mode Mode, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	details["mode"] = string(mode)
	return audit.Record(ctx, tx, audit.Event{
		At: s.now(), UserID: userID, ActorID: actor.UserID, IP: actor.IP,
		Action: action, Subject: "broker/" + string(mode), Details: details,
	})
}

// Overview returns the user's active mode and both connections (GET
// /broker).
func (s *Service) Overview(ctx context.Context, userID string) (Overview, error) {
	ov := Overview{ActiveMode: Paper, Connections: map[Mode]*Connection{Live: nil, Paper: nil}}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		m, _, err := activeModeTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		ov.ActiveMode = m
		rows, err := tx.Query(ctx, `SELECT mode, consumer_key, account_id_masked, realm, status, last_test, updated_at
			FROM broker_connections WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		conns, err := pgx.CollectRows(rows, scanConnection)
		if err != nil {
			return err
		}
		for _, c := range conns {
			ov.Connections[c.Mode] = c
		}
		return nil
	})
	if err != nil {
		return Overview{}, fmt.Errorf("broker overview: %w", err)
	}
	if c := ov.Connections[ov.ActiveMode]; c != nil {
		if st, ok := s.cache.State(userID); ok && st.Mode == ov.ActiveMode {
			c.Session = &st
		}
	}
	if ov.OnCompeting, err = s.SessionPreference(ctx, userID); err != nil {
		return Overview{}, err
	}
	return ov, nil
}

func scanConnection(row pgx.CollectableRow) (*Connection, error) {
	var c Connection
	var mode, status string
	var lastTest []byte
	if err := row.Scan(&mode, &c.ConsumerKey, &c.AccountIDMasked, &c.Realm, &status, &lastTest, &c.UpdatedAt); err != nil {
		return nil, err
	}
	c.Mode, c.Status = Mode(mode), Status(status)
	c.UpdatedAt = c.UpdatedAt.UTC()
	if lastTest != nil {
		var tr TestResult
		if err := json.Unmarshal(lastTest, &tr); err != nil {
			return nil, fmt.Errorf("decode last_test: %w", err)
		}
		c.LastTest = &tr
	}
	return &c, nil
}

// Save validates and stores the credential set for mode, replacing the
// one saved before (PUT /broker/{mode}). Its status becomes untested and
// the cached IBKR session of the user is dropped at once.
func (s *Service) Save(ctx context.Context, userID string, mode Mode, in Input, actor Actor) (*Connection, error) {
	sc, err := SealConnection(s.ring, userID, mode, in)
	if err != nil {
		return nil, err
	}
	consumerKey, accessToken, realm := sc.ConsumerKey, sc.AccessToken, sc.Realm
	sig, enc, sec, dh, acct := sc.SignatureKey, sc.EncryptionKey, sc.AccessTokenSecret, sc.DHParams, sc.AccountID
	now := s.now().UTC()
	var conn *Connection
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := userExists(ctx, tx, userID); err != nil {
			return err
		}
		var replaced bool
		err := tx.QueryRow(ctx, `
			INSERT INTO broker_connections (user_id, mode, consumer_key, access_token, realm, signature_key,
				encryption_key, access_token_secret, dh_params, account_id, account_id_masked, status, last_test,
				created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'untested', NULL, $12, $12)
			ON CONFLICT (user_id, mode) DO UPDATE SET consumer_key = EXCLUDED.consumer_key,
				access_token = EXCLUDED.access_token, realm = EXCLUDED.realm,
				signature_key = EXCLUDED.signature_key, encryption_key = EXCLUDED.encryption_key,
				access_token_secret = EXCLUDED.access_token_secret, dh_params = EXCLUDED.dh_params,
				account_id = EXCLUDED.account_id, account_id_masked = EXCLUDED.account_id_masked,
				status = 'untested', last_test = NULL, updated_at = EXCLUDED.updated_at,
				pending_since = NULL, activation_checked_at = NULL
			RETURNING (xmax <> 0)`,
			userID, string(mode), consumerKey, accessToken, realm, sig, enc, sec, dh, acct,
			sc.AccountIDMasked, now).Scan(&replaced)
		if err != nil {
			return err
		}
		// The first saved connection becomes the active one.
		if _, err := tx.Exec(ctx, `INSERT INTO broker_settings (user_id, active_mode, updated_at)
			VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING`, userID, string(mode), now); err != nil {
			return err
		}
		conn = &Connection{Mode: mode, ConsumerKey: consumerKey, AccountIDMasked: sc.AccountIDMasked,
			Realm: realm, Status: StatusUntested, UpdatedAt: now}
		return s.record(ctx, tx, userID, actor, "broker.credentials_saved", mode, map[string]any{
			"consumer_key": consumerKey, "account_id_masked": conn.AccountIDMasked, "replaced": replaced,
		})
	})
	// Drop the cached session whether or not the commit went through: a
	// stale session costs one handshake, a session on replaced
	// credentials would be wrong.
	s.cache.Invalidate(userID)
	if err != nil {
		return nil, wrapDB("save "+string(mode)+" connection", err)
	}
	return conn, nil
}

// userExists turns a missing user into "not found" rather than a foreign
// key violation.
func userExists(ctx context.Context, tx pgx.Tx, userID string) error {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, userID).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return errs.E(errs.NotFound, "no such user")
	}
	return nil
}

// wrapDB wraps a database failure once with the operation, keeping an
// *errs.Error's client message intact.
func wrapDB(op string, err error) error {
	if e := errs.As(err); e != nil {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Delete removes the credential set for mode (DELETE /broker/{mode}) and
// drops the cached session.
func (s *Service) Delete(ctx context.Context, userID string, mode Mode, actor Actor) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM broker_connections WHERE user_id = $1 AND mode = $2`, userID, string(mode))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errs.E(errs.NotFound, "no %s IBKR connection is saved", mode)
		}
		return s.record(ctx, tx, userID, actor, "broker.credentials_deleted", mode, nil)
	})
	s.cache.Invalidate(userID)
	if err != nil {
		return wrapDB("delete "+string(mode)+" connection", err)
	}
	return nil
}

// SetActive makes mode the one orders use (PUT /broker/active). The cached
// session, which belongs to the previous mode, is dropped.
func (s *Service) SetActive(ctx context.Context, userID string, mode Mode, actor Actor) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := userExists(ctx, tx, userID); err != nil {
			return err
		}
		prev, _, err := activeModeTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO broker_settings (user_id, active_mode, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET active_mode = EXCLUDED.active_mode, updated_at = EXCLUDED.updated_at`,
			userID, string(mode), s.now().UTC()); err != nil {
			return err
		}
		return s.record(ctx, tx, userID, actor, "broker.active_mode_set", mode, map[string]any{"previous": string(prev)})
	})
	s.cache.Invalidate(userID)
	if err != nil {
		return wrapDB("set active mode", err)
	}
	return nil
}

// saveTestResult stores a test of the saved set as last_test with the
// status it implies, and audits it, in one transaction. The connection may
// have been replaced while the test ran: then the result is only audited.
func (s *Service) saveTestResult(ctx context.Context, userID string, mode Mode, tested sealedRow, res TestResult, saved bool, actor Actor) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode test result: %w", err)
	}
	details := map[string]any{"ok": res.OK, "saved_credentials": saved}
	if res.Error != nil {
		details["error_code"] = string(res.Error.Code)
	}
	status := statusOf(res)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		activated := false
		if saved {
			// Matching the consumer key and access token keeps a result
			// off credentials saved while the test ran.
			var before string
			err := tx.QueryRow(ctx, `SELECT status FROM broker_connections
				WHERE user_id = $1 AND mode = $2 AND access_token = $3 AND consumer_key = $4 FOR UPDATE`,
				userID, string(mode), tested.accessToken, tested.consumerKey).Scan(&before)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE broker_connections SET last_test = $3, status = $4,
					pending_since = CASE WHEN $4 = 'pending_activation' THEN coalesce(pending_since, $7) END
				WHERE user_id = $1 AND mode = $2 AND access_token = $5 AND consumer_key = $6`,
				userID, string(mode), b, string(status), tested.accessToken, tested.consumerKey, s.now()); err != nil {
				return err
			}
			activated = before == string(StatusPendingActivation) && status == StatusConnected
		}
		if err := s.record(ctx, tx, userID, actor, "broker.connection_tested", mode, details); err != nil {
			return err
		}
		if activated && s.onActivated != nil {
			return s.onActivated(ctx, tx, userID, mode)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store test result: %w", err)
	}
	return nil
}

// statusOf is the connection status a test result implies.
func statusOf(res TestResult) Status {
	switch {
	case res.OK:
		return StatusConnected
	case res.Error != nil && res.Error.Code == errs.BrokerConsumerNotRecognized:
		return StatusPendingActivation
	}
	return StatusFailed
}

// since returns the milliseconds from start to now on the service clock.
func (s *Service) since(start time.Time) int64 { return s.now().Sub(start).Milliseconds() }
