// Package mailcatch is an SMTP server that keeps what it receives: the
// receiving side of e-mail in tests, and the demo's mailbox. It offers
// STARTTLS with a certificate of its own (Client trusts it) and accepts
// AUTH PLAIN with the user and password it was given.
package mailcatch

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one received e-mail.
type Message struct {
	From string
	To   []string
	Data []byte // as received: headers and body
	At   time.Time
}

// Header returns the value of one header of the message, or "".
func (m Message) Header(name string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}

// Text returns the message's plain-text body, decoded (quoted-printable or
// base64), from a single-part message or the first text/plain part of a
// multipart one; "" when there is none.
func (m Message) Text() string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return textPart(textproto.MIMEHeader(msg.Header), msg.Body, 0)
}

func textPart(h textproto.MIMEHeader, body io.Reader, depth int) string {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && depth < 5:
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err != nil {
				return ""
			}
			if t := textPart(p.Header, p, depth+1); t != "" {
				return t
			}
		}
	case mt == "text/plain":
		var r io.Reader = body
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err != nil {
			return ""
		}
		return string(b)
	}
	return ""
}

// Server is a running catcher.
type Server struct {
	srv      *smtp.Server
	l        net.Listener
	user     string
	password string
	pool     *x509.CertPool
	onMsg    func(Message)
	gate     func(Message) error
	certPEM  []byte

	mu   sync.Mutex
	msgs []Message
	wait chan struct{} // closed and replaced on every message
}

// Options configure a catcher.
type Options struct {
	Addr     string // default 127.0.0.1:0
	User     string // AUTH PLAIN credentials; "" accepts mail without AUTH
	Password string
	// ImplicitTLS serves TLS from the first byte (smtps://) instead of
	// STARTTLS (smtp://).
	ImplicitTLS bool
	// OnMessage, when set, is called with every message received.
	OnMessage func(Message)
	// Gate, when set, sees each message before it is kept; an error
	// refuses it (the sender is told the DATA failed). Tests hold a
	// delivery in flight with it.
	Gate func(Message) error
}

// Start listens and serves until Close.
func Start(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	cert, pool, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s := &Server{user: o.User, password: o.Password, pool: pool, onMsg: o.OnMessage, gate: o.Gate, wait: make(chan struct{}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	s.srv.MaxMessageBytes = 10 << 20
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.ImplicitTLS {
		s.l, err = tls.Listen("tcp", o.Addr, tlsCfg)
	} else {
		s.srv.TLSConfig = tlsCfg
		s.l, err = net.Listen("tcp", o.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("mailcatch: listen: %w", err)
	}
	go s.srv.Serve(s.l)
	return s, nil
}

// Addr returns the host:port the catcher listens on.
func (s *Server) Addr() string { return s.l.Addr().String() }

// ClientTLS returns a TLS configuration that trusts the catcher.
func (s *Server) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: s.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// CertPEM returns the catcher's certificate in PEM, for a process that
// must trust it (SSL_CERT_FILE).
func (s *Server) CertPEM() []byte { return s.certPEM }

// Close stops the catcher.
func (s *Server) Close() error { return s.srv.Close() }

// Messages returns every message received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitFor waits until at least n messages arrived and returns them all.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, wait := append([]Message(nil), s.msgs...), s.wait
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return msgs, fmt.Errorf("mailcatch: %d of %d messages: %w", len(msgs), n, ctx.Err())
		}
	}
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }

type session struct {
	s      *Server
	authed bool
	msg    Message
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if ss.s.user == "" || user != ss.s.user || password != ss.s.password {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.msg = Message{From: from}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := ss.msg
	m.Data, m.At = b, time.Now()
	s := ss.s
	if s.gate != nil {
		if err := s.gate(m); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.wait)
	s.wait = make(chan struct{})
	s.mu.Unlock()
	if s.onMsg != nil {
		s.onMsg(m)
	}
	return nil
}

func (ss *session) Reset()        { ss.msg = Message{} }
func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for localhost and 127.0.0.1, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "mailcatch"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
