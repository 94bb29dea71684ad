package broker

import (
	"fmt"
	"strings"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/seal"
)

// SealedConnection is a checked credential set sealed for one row of
// broker_connections: the clear columns and the ciphertexts, bound to
// their user, mode and column.
type SealedConnection struct {
	ConsumerKey, AccessToken, Realm, AccountIDMasked string
	// EncryptionKey is nil when the signature key decrypts the access
	// token secret too.
	SignatureKey, EncryptionKey, AccessTokenSecret, DHParams, AccountID []byte
}

// SealConnection checks in with the IBKR client's parsers (every problem a
// field error under the REST names) and seals its secrets with ring for
// (userID, mode), as Save stores them. Save uses it; a bulk load that writes
// broker_connections directly (the storm benchmark's set-up) must too, so
// that the server opens its rows.
func SealConnection(ring *seal.Ring, userID string, mode Mode, in Input) (SealedConnection, error) {
	creds, err := parseInput(in)
	if err != nil {
		return SealedConnection{}, err
	}
	dropCredentials(creds) // the parsed keys are not needed: the PEM text is what is sealed
	return sealInput(ring, userID, mode, in, creds.ConsumerKey, creds.AccessToken, creds.Realm, creds.AccountID)
}

// SealBulkConnection is SealConnection for one of many credential sets
// made the same way, of which the caller checked one with SealConnection
// (the storm benchmark's set-up writes 10,000, which share keys and DH
// parameters): it checks the plain fields but not the keys, the access
// token secret or the DH parameters, whose checks cost an RSA decryption
// and a primality test each. A set it lets through broken fails at its
// first handshake, as a damaged row would.
func SealBulkConnection(ring *seal.Ring, userID string, mode Mode, in Input) (SealedConnection, error) {
	var fields []errs.FieldError
	check := func(field string, parse func(string) (string, error), v string) string {
		out, err := parse(v)
		if err != nil {
			fields = append(fields, errs.FieldError{Field: field, Message: err.Error()})
		}
		return out
	}
	consumerKey := check("consumer_key", ibkr.ParseConsumerKey, in.ConsumerKey)
	accessToken := check("access_token", ibkr.ParseAccessToken, in.AccessToken)
	accountID := check("account_id", ibkr.ParseAccountID, in.AccountID)
	if len(fields) > 0 {
		return SealedConnection{}, errs.Fields("the IBKR credentials are not valid", fields...)
	}
	return sealInput(ring, userID, mode, in, consumerKey, accessToken, ibkr.RealmFor(consumerKey), accountID)
}

// sealInput seals in's secrets for (userID, mode); the clear fields come
// parsed.
func sealInput(ring *seal.Ring, userID string, mode Mode, in Input, consumerKey, accessToken, realm, accountID string) (SealedConnection, error) {
	sc := SealedConnection{ConsumerKey: consumerKey, AccessToken: accessToken, Realm: realm,
		AccountIDMasked: MaskAccountID(accountID)}
	sealField := func(field, v string) ([]byte, error) {
		return ring.Seal([]byte(v), aad(userID, mode, field)...)
	}
	var err error
	if sc.SignatureKey, err = sealField(fieldSignatureKey, in.SignatureKeyPEM); err == nil {
		if strings.TrimSpace(in.EncryptionKeyPEM) != "" {
			sc.EncryptionKey, err = sealField(fieldEncryptionKey, in.EncryptionKeyPEM)
		}
	}
	if err == nil {
		sc.AccessTokenSecret, err = sealField(fieldAccessTokenSecret, in.AccessTokenSecret)
	}
	if err == nil {
		sc.DHParams, err = sealField(fieldDHParams, in.DHParams)
	}
	if err == nil {
		sc.AccountID, err = sealField(fieldAccountID, accountID)
	}
	if err != nil {
		return SealedConnection{}, fmt.Errorf("save %s connection: %w", mode, err)
	}
	return sc, nil
}
