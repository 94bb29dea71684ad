package ibkrsim

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"
)

// Consumer is one OAuth consumer as IBKR's side knows it, with the JSON field
// names of the consumers FILE (shared with the vectors' credentials object).
type Consumer struct {
	ConsumerKey               string    `json:"consumer_key"`
	AccessToken               string    `json:"access_token"`
	AccessTokenSecretPlainHex string    `json:"access_token_secret_plain_hex"`
	SignaturePublicKeyPEM     string    `json:"signature_public_key_pem"`
	DHPrimeHex                string    `json:"dh_prime_hex,omitempty"`
	DHParamPEM                string    `json:"dh_param_pem,omitempty"`
	Realm                     string    `json:"realm,omitempty"`
	Accounts                  []Account `json:"accounts"`
}

// Account is one brokerage account of a consumer; paper accounts start with DU,
// live ones with U.
type Account struct {
	ID    string `json:"id"`
	Paper bool   `json:"paper"`
}

const (
	realmLimited  = "limited_poa"
	realmTest     = "test_realm"
	testConsumer  = "TESTCONS"
	dhGenerator   = 2
	maxConsumers  = 100000
	minPrimeBits  = 512
	secretByteLen = 32
)

// consumer is the simulator's live state for one Consumer. mu guards every
// mutable field; the immutable ones are set by AddConsumer.
type consumer struct {
	key      string
	token    string
	realm    string
	secret   []byte // the access token secret's plaintext
	prepend  string // lower-case hex of secret
	sigKey   *rsa.PublicKey
	prime    *big.Int
	accounts []Account
	books    []*book // one per account, shared with other consumers of that account

	mu  sync.Mutex
	lst []byte // current live session token; nil when none
	// superseded are the last tokens a newer handshake replaced.
	superseded [][]byte
	stats      ConsumerStats
	lstExp     time.Time
	apiSID     string // the "session" of /tickle, one per live session token
	nonces     nonceWindow
	sess       brokerSession
	pace       pacer
	// pending holds reply-question chains by reply id.
	pending map[string]*pendingOrder
}

// parseConsumer validates c and builds its state.
func parseConsumer(c Consumer) (*consumer, error) {
	if c.ConsumerKey == "" {
		return nil, errors.New("consumer_key is required")
	}
	if c.AccessToken == "" {
		return nil, errors.New("access_token is required")
	}
	secret, err := hex.DecodeString(strings.TrimSpace(c.AccessTokenSecretPlainHex))
	if err != nil || len(secret) == 0 {
		return nil, errors.New("access_token_secret_plain_hex must be hex")
	}
	pub, err := parsePublicKey(c.SignaturePublicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("signature_public_key_pem: %w", err)
	}
	prime, err := parsePrime(c.DHPrimeHex, c.DHParamPEM)
	if err != nil {
		return nil, err
	}
	realm := c.Realm
	if realm == "" {
		realm = realmLimited
		if c.ConsumerKey == testConsumer {
			realm = realmTest
		}
	}
	// IBKR keeps test_realm for its public test consumer only.
	if realm == realmTest && c.ConsumerKey != testConsumer {
		return nil, fmt.Errorf("realm %q is reserved for %s", realmTest, testConsumer)
	}
	if len(c.Accounts) == 0 {
		return nil, errors.New("at least one account is required")
	}
	for _, a := range c.Accounts {
		if !validAccountID(a.ID) {
			return nil, fmt.Errorf("account id %q: want DU or U followed by digits", a.ID)
		}
	}
	return &consumer{
		key:      c.ConsumerKey,
		token:    c.AccessToken,
		realm:    realm,
		secret:   secret,
		prepend:  hex.EncodeToString(secret),
		sigKey:   pub,
		prime:    prime,
		accounts: append([]Account(nil), c.Accounts...),
		pending:  make(map[string]*pendingOrder),
	}, nil
}

func validAccountID(id string) bool {
	digits := ""
	switch {
	case strings.HasPrefix(id, "DU"):
		digits = id[2:]
	case strings.HasPrefix(id, "U"):
		digits = id[1:]
	default:
		return false
	}
	if len(digits) < 4 || len(digits) > 12 {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// normalizePEM undoes the damage of pasting: CRLF line ends and stray
// indentation.
func normalizePEM(s string) []byte {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return []byte(strings.Join(lines, "\n"))
}

// parsePublicKey accepts a PKIX "PUBLIC KEY" or a PKCS#1 "RSA PUBLIC KEY".
func parsePublicKey(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(normalizePEM(s))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unexpected PEM type %q", block.Type)
	}
}

// dhParams is PKCS#3 DHParameter.
type dhParams struct {
	P, G *big.Int
	L    int `asn1:"optional"`
}

// parsePrime reads the DH prime from hex or from `openssl dhparam` PEM; the
// generator must be 2 because IBKR always uses 2.
func parsePrime(primeHex, paramPEM string) (*big.Int, error) {
	var p *big.Int
	switch {
	case strings.TrimSpace(primeHex) != "":
		v, ok := new(big.Int).SetString(strings.TrimSpace(primeHex), 16)
		if !ok {
			return nil, errors.New("dh_prime_hex is not hex")
		}
		p = v
	case strings.TrimSpace(paramPEM) != "":
		block, _ := pem.Decode(normalizePEM(paramPEM))
		if block == nil || block.Type != "DH PARAMETERS" {
			return nil, errors.New("dh_param_pem: no DH PARAMETERS block")
		}
		var params dhParams
		if _, err := asn1.Unmarshal(block.Bytes, &params); err != nil {
			return nil, fmt.Errorf("dh_param_pem: %w", err)
		}
		if params.G == nil || params.G.Int64() != dhGenerator {
			return nil, errors.New("dh_param_pem: generator must be 2")
		}
		p = params.P
	default:
		return nil, errors.New("dh_prime_hex or dh_param_pem is required")
	}
	if p == nil || p.BitLen() < minPrimeBits || p.Bit(0) == 0 {
		return nil, errors.New("DH prime must be an odd number of at least 512 bits")
	}
	return p, nil
}

// AddConsumer registers c with the simulator. A consumer key can be added
// once; accounts may be shared between consumers, as one IBKR user can own
// several consumer registrations.
func (s *Server) AddConsumer(c Consumer) error {
	st, err := parseConsumer(c)
	if err != nil {
		return fmt.Errorf("add consumer %q: %w", c.ConsumerKey, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.consumers[st.key]; dup {
		return fmt.Errorf("add consumer %q: already registered", st.key)
	}
	if len(s.consumers) >= maxConsumers {
		return fmt.Errorf("add consumer %q: too many consumers", st.key)
	}
	for _, a := range st.accounts {
		b := s.books[a.ID]
		if b == nil {
			b = newBook(a.ID)
			s.books[a.ID] = b
		}
		st.books = append(st.books, b)
	}
	s.consumers[st.key] = st
	return nil
}

// LoadConsumersFile adds every consumer of a consumers FILE (a JSON array).
func (s *Server) LoadConsumersFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load consumers: %w", err)
	}
	var list []Consumer
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("load consumers %s: %w", path, err)
	}
	for _, c := range list {
		if err := s.AddConsumer(c); err != nil {
			return fmt.Errorf("load consumers %s: %w", path, err)
		}
	}
	return nil
}

func (s *Server) consumerByKey(key string) *consumer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.consumers[key]
}

// account returns the consumer's account with that id and its book.
func (c *consumer) account(id string) (Account, *book, bool) {
	for i, a := range c.accounts {
		if a.ID == id {
			return a, c.books[i], true
		}
	}
	return Account{}, nil, false
}

// nonceWindow remembers nonces until they fall out of the timestamp window, so
// a replay inside the window is refused and memory stays bounded.
type nonceWindow struct {
	seen      map[string]time.Time
	lastPrune time.Time
}

// use records nonce and reports whether it was fresh.
func (n *nonceWindow) use(nonce string, now time.Time, keep time.Duration) bool {
	if n.seen == nil {
		n.seen = make(map[string]time.Time)
	}
	if now.Sub(n.lastPrune) > keep/4 || len(n.seen) > 100000 {
		for k, exp := range n.seen {
			if now.After(exp) {
				delete(n.seen, k)
			}
		}
		n.lastPrune = now
	}
	if exp, ok := n.seen[nonce]; ok && !now.After(exp) {
		return false
	}
	n.seen[nonce] = now.Add(keep)
	return true
}
