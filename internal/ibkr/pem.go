package ibkr

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MinRSAKeyBits is the smallest RSA key IBKR accepts for signing and encryption.
const MinRSAKeyBits = 2048

// Size bounds for pasted material: a DER private key of 8192 bits is about
// 4.8 KB, and checking a much larger key costs seconds of CPU, which an API
// server must not spend on one paste.
const (
	maxPastedBytes = 64 << 10
	maxKeyDERBytes = 6000
)

// DHPrimeBits is the size of the Diffie-Hellman prime IBKR's portal expects
// (`openssl dhparam 2048`).
const DHPrimeBits = 2048

// removePassphraseHint is the advice for an encrypted key: IBKR's flow never
// asks for a passphrase, so the key must be stored unencrypted.
const removePassphraseHint = "is protected by a passphrase; remove the passphrase first " +
	"(openssl rsa -in key.pem -out key_nopass.pem) and paste the result"

// pemBlock is one block found in pasted text, tolerant of the ways people
// paste: CRLF, indentation, collapsed newlines, escaped "\n" from JSON.
type pemBlock struct {
	Type      string
	Encrypted bool // legacy "Proc-Type: 4,ENCRYPTED" header
	Bytes     []byte
	BadBase64 bool
	NoEnd     bool
}

// normalizePasted undoes the usual damage of copy and paste: escaped newlines
// from a JSON string, CR line endings and surrounding whitespace.
func normalizePasted(s string) string {
	s = strings.ReplaceAll(s, `\r\n`, "\n")
	s = strings.ReplaceAll(s, `\n`, "\n")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.TrimSpace(s)
}

// findPEMBlocks returns every BEGIN/END block of s in order. It does its own
// scanning rather than using encoding/pem because a pasted key may have lost
// its newlines or gained indentation, which encoding/pem refuses.
func findPEMBlocks(s string) []pemBlock {
	var blocks []pemBlock
	for {
		i := strings.Index(s, "-----BEGIN ")
		if i < 0 {
			return blocks
		}
		rest := s[i+len("-----BEGIN "):]
		j := strings.Index(rest, "-----")
		if j < 0 {
			return blocks
		}
		typ := strings.TrimSpace(rest[:j])
		rest = rest[j+len("-----"):]
		b := pemBlock{Type: typ}
		end := "-----END " + typ + "-----"
		k := strings.Index(rest, end)
		var body string
		if k < 0 {
			b.NoEnd = true
			// The body runs to the next BEGIN or to the end of the text.
			if n := strings.Index(rest, "-----BEGIN "); n >= 0 {
				body, s = rest[:n], rest[n:]
			} else {
				body, s = rest, ""
			}
		} else {
			body, s = rest[:k], rest[k+len(end):]
		}
		b.Encrypted, body = stripPEMHeaders(body)
		der, err := decodeBase64Loose(body)
		if err != nil {
			b.BadBase64 = true
		}
		b.Bytes = der
		blocks = append(blocks, b)
	}
}

// stripPEMHeaders removes RFC 1421 headers ("Proc-Type: ...", "DEK-Info: ...")
// and reports whether they mark the block as encrypted.
func stripPEMHeaders(body string) (encrypted bool, rest string) {
	if !strings.Contains(body, ":") {
		return false, body
	}
	var keep []string
	for line := range strings.SplitSeq(body, "\n") {
		l := strings.TrimSpace(line)
		if name, value, ok := strings.Cut(l, ":"); ok {
			if strings.EqualFold(strings.TrimSpace(name), "Proc-Type") && strings.Contains(strings.ToUpper(value), "ENCRYPTED") {
				encrypted = true
			}
			continue
		}
		keep = append(keep, l)
	}
	return encrypted, strings.Join(keep, "\n")
}

// decodeBase64Loose decodes standard base64 ignoring all whitespace and
// tolerating missing padding.
func decodeBase64Loose(s string) ([]byte, error) {
	clean := stripSpace(s)
	if strings.HasSuffix(clean, "=") {
		return base64.StdEncoding.DecodeString(clean)
	}
	return base64.RawStdEncoding.DecodeString(clean)
}

// stripSpace removes every ASCII whitespace character.
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n\v\f") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n', '\v', '\f':
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// ParseRSAPrivateKey parses an RSA private key of at least 2048 bits pasted as
// PEM, PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"). It tolerates CRLF,
// indentation, a missing final newline and escaped "\n"; it names the usual
// mistakes (a public key, a certificate, DH parameters, a passphrase-protected
// key, a non-RSA key) and never repeats the key material in its error.
func ParseRSAPrivateKey(pemText string) (*rsa.PrivateKey, error) {
	if len(pemText) > maxPastedBytes {
		return nil, keyError("is far too long: paste only the private key")
	}
	s := normalizePasted(pemText)
	if s == "" {
		return nil, keyError("is empty: paste the private key, starting with the line BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY")
	}
	blocks := findPEMBlocks(s)
	if len(blocks) == 0 {
		// A bare base64 body without its BEGIN/END lines still parses.
		if der, err := decodeBase64Loose(s); err == nil && len(der) > 0 {
			if key, kerr := parsePrivateKeyDER(der); kerr == nil {
				return checkRSAKey(key)
			}
		}
		return nil, keyError("is not a PEM private key: it should start with the line BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY")
	}
	// Prefer a private-key block when several were pasted (a key and its
	// certificate, say).
	chosen := blocks[0]
	for _, b := range blocks {
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			chosen = b
			break
		}
	}
	b := chosen
	switch b.Type {
	case "RSA PRIVATE KEY", "PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		return nil, keyError(removePassphraseHint)
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, keyError("is a public key (BEGIN " + b.Type + "), not the private key: paste the private key file instead; the public key is what you uploaded to IBKR")
	case "CERTIFICATE":
		return nil, keyError("is a certificate (BEGIN CERTIFICATE), not a private key: paste the private key, starting with the line BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY")
	case "DH PARAMETERS":
		return nil, keyError("contains Diffie-Hellman parameters (BEGIN DH PARAMETERS), not a private key: paste them in the DH parameters field")
	case "EC PRIVATE KEY":
		return nil, keyError("is an EC key; IBKR needs an RSA key of at least 2048 bits (openssl genrsa -out key.pem 2048)")
	case "OPENSSH PRIVATE KEY":
		return nil, keyError("is an OpenSSH key; IBKR needs an RSA key in PEM form (openssl genrsa -out key.pem 2048)")
	default:
		return nil, keyErrorf("is a %q PEM block, not a private key: paste the RSA private key, starting with the line BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY", truncateLabel(b.Type))
	}
	if b.Encrypted {
		return nil, keyError(removePassphraseHint)
	}
	if b.NoEnd {
		return nil, keyError("is incomplete: the -----END " + b.Type + "----- line is missing; copy the whole key")
	}
	if b.BadBase64 || len(b.Bytes) == 0 {
		return nil, keyError("is damaged: the text between the BEGIN and END lines is not valid base64; copy the whole key again")
	}
	key, err := parsePrivateKeyDER(b.Bytes)
	if err != nil {
		return nil, err
	}
	return checkRSAKey(key)
}

// truncateLabel keeps an unknown PEM label short in a message.
func truncateLabel(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// parsePrivateKeyDER tries PKCS#1 then PKCS#8: labels are often wrong in
// pasted keys, the DER is what counts.
func parsePrivateKeyDER(der []byte) (any, error) {
	if len(der) > maxKeyDERBytes {
		return nil, keyError("is too large: IBKR uses RSA keys of 2048 bits (at most 8192 are accepted here)")
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, keyError("is damaged or incomplete: it does not parse as a PKCS#1 or PKCS#8 private key; copy the whole key again")
}

// checkRSAKey insists on RSA of at least MinRSAKeyBits.
func checkRSAKey(key any) (*rsa.PrivateKey, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSAKeyBits {
			return nil, keyErrorf("is a %d-bit RSA key; IBKR needs at least %d bits (openssl genrsa -out key.pem 2048)", bits, MinRSAKeyBits)
		}
		if err := k.Validate(); err != nil {
			return nil, keyError("is damaged: its RSA parameters are inconsistent; copy the whole key again")
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return nil, keyError("is an EC key; IBKR needs an RSA key of at least 2048 bits (openssl genrsa -out key.pem 2048)")
	case ed25519.PrivateKey:
		return nil, keyError("is an Ed25519 key; IBKR needs an RSA key of at least 2048 bits (openssl genrsa -out key.pem 2048)")
	default:
		return nil, keyError("is not an RSA key; IBKR needs an RSA key of at least 2048 bits (openssl genrsa -out key.pem 2048)")
	}
}

// dhParams is PKCS#3 DHParameter.
type dhParams struct {
	P                  *big.Int
	G                  *big.Int
	PrivateValueLength int `asn1:"optional"`
}

// ParseDHPrime parses the Diffie-Hellman prime from `openssl dhparam 2048`
// output (a PKCS#3 "DH PARAMETERS" PEM block, whose generator must be 2) or
// from the prime written in hex (spaces, colons and a 0x prefix allowed).
// The prime must be 2048 bits.
func ParseDHPrime(s string) (*big.Int, error) { return parseDHPrime(s, true) }

// parseDHPrime is ParseDHPrime; without checkPrime the prime's primality
// is not tested (see ParseSavedCredentials).
func parseDHPrime(s string, checkPrime bool) (*big.Int, error) {
	if len(s) > maxPastedBytes {
		return nil, dhError("are far too long: paste only the openssl dhparam 2048 output")
	}
	s = normalizePasted(s)
	if s == "" {
		return nil, dhError("are empty: paste the DH parameters (openssl dhparam 2048 output) or the prime in hex")
	}
	var p *big.Int
	if strings.Contains(s, "-----BEGIN") {
		blocks := findPEMBlocks(s)
		if len(blocks) == 0 {
			return nil, dhError("are not valid PEM: expected -----BEGIN DH PARAMETERS-----")
		}
		b := blocks[0]
		switch {
		case b.Type == "X9.42 DH PARAMETERS":
			return nil, dhError("are X9.42 DH parameters; IBKR needs PKCS#3 parameters (openssl dhparam 2048)")
		case strings.HasSuffix(b.Type, "PRIVATE KEY") || strings.HasSuffix(b.Type, "PUBLIC KEY") || b.Type == "CERTIFICATE":
			return nil, dhError("contain a key or certificate (BEGIN " + truncateLabel(b.Type) + "), not DH parameters: paste the openssl dhparam 2048 output")
		case b.Type != "DH PARAMETERS":
			return nil, dhErrorf("are a %q PEM block, not DH parameters: expected -----BEGIN DH PARAMETERS-----", truncateLabel(b.Type))
		case b.NoEnd:
			return nil, dhError("are incomplete: the -----END DH PARAMETERS----- line is missing")
		case b.BadBase64 || len(b.Bytes) == 0:
			return nil, dhError("are damaged: the text between the BEGIN and END lines is not valid base64")
		}
		var params dhParams
		rest, err := asn1.Unmarshal(b.Bytes, &params)
		if err != nil || len(rest) != 0 || params.P == nil || params.G == nil {
			return nil, dhError("are damaged: they do not parse as PKCS#3 DH parameters")
		}
		if params.G.Cmp(big.NewInt(2)) != 0 {
			return nil, dhErrorf("use generator %s; IBKR requires generator 2 (openssl dhparam 2048)", truncateLabel(params.G.String()))
		}
		p = params.P
	} else {
		h := stripSpace(strings.ReplaceAll(s, ":", ""))
		h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
		if h == "" || !isHex(h) {
			return nil, dhError("are neither DH parameters PEM (-----BEGIN DH PARAMETERS-----) nor a prime in hex")
		}
		p = new(big.Int)
		p.SetString(h, 16)
	}
	if bits := p.BitLen(); bits != DHPrimeBits {
		return nil, dhErrorf("have a %d-bit prime; IBKR needs a %d-bit prime (openssl dhparam 2048)", bits, DHPrimeBits)
	}
	// Baillie-PSW alone (n=0) is cheap and has no known counterexample; it
	// catches a damaged paste that still has the right length.
	if p.Bit(0) == 0 || checkPrime && !p.ProbablyPrime(0) {
		return nil, dhError("are damaged: the number is not a prime; copy the DH parameters again")
	}
	return p, nil
}

// isHex reports whether s consists of hex digits only.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// keyError prefixes a problem with the subject every key message shares, so
// that a caller can show it under any field name.
func keyError(msg string) error { return errors.New("the private key " + msg) }

// keyErrorf is keyError with formatting.
func keyErrorf(format string, args ...any) error {
	return keyError(fmt.Sprintf(format, args...))
}

// dhError prefixes a problem with the DH parameters' subject.
func dhError(msg string) error { return errors.New("the DH parameters " + msg) }

// dhErrorf is dhError with formatting.
func dhErrorf(format string, args ...any) error {
	return dhError(fmt.Sprintf(format, args...))
}
