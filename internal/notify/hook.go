package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/ordertune/ordertune/internal/errs"
)

// Sign returns the Standard Webhooks signature header value of a message:
// "v1," and the base64 HMAC-SHA256, keyed with the base64-decoded part of
// the secret after "whsec_", of id "." timestamp "." body.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return "", errors.New("webhook secret is not base64")
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// errPrivateTarget is the dialer's refusal of a non-public address.
var errPrivateTarget = errors.New("refused: the address is private, loopback or link-local")

// reserved lists ranges that are not public besides those netip knows:
// shared address space (carrier-grade NAT), "this network", benchmarking,
// IPv4 and IPv6 documentation, 6to4 relays and NAT64 into private space.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// publicAddr reports whether ip is a public unicast address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// hookSender makes webhook requests. Its dialer checks the address it is
// about to connect to, after name resolution, so a name that resolves to
// a private address (or is re-bound to one after a check) is refused too.
type hookSender struct {
	client *http.Client
}

func newHookSender(allowPrivate bool, timeout time.Duration) *hookSender {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return errPrivateTarget
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, past the check
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &hookSender{client: &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// Redirects are not followed: a 3xx is an answer, and not a 2xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// attempt is the outcome of one request.
type attempt struct {
	status   int // 0: no answer
	err      string
	duration time.Duration
}

func (a attempt) ok() bool { return a.status >= 200 && a.status < 300 }

func (h *hookSender) send(ctx context.Context, url, secret, id string, now time.Time, body []byte) attempt {
	ts := now.Unix()
	sig, err := Sign(secret, id, ts, body)
	if err != nil {
		return attempt{err: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return attempt{err: "invalid URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Ordertune-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	start := time.Now()
	res, err := h.client.Do(req)
	a := attempt{duration: time.Since(start)}
	if err != nil {
		a.err = describe(err)
		return a
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	a.status = res.StatusCode
	if !a.ok() {
		a.err = "answered " + res.Status
	}
	return a
}

// describe says why a request failed, in words fit for the delivery log.
func describe(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errPrivateTarget):
		return errPrivateTarget.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "name not resolved"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return "connection failed: " + opErr.Err.Error()
	}
	return "request failed"
}

// webhookArgs is one queued delivery of an event to an endpoint.
type webhookArgs struct {
	UserID     string `json:"user_id"`
	EndpointID string `json:"endpoint_id"`
	EventID    string `json:"event_id"`
}

// Kind names the job in river's table.
func (webhookArgs) Kind() string { return "notify.webhook" }

type webhookWorker struct {
	river.WorkerDefaults[webhookArgs]
	s *Service
}

// NextRetry follows the service's back-off, not river's default.
func (w *webhookWorker) NextRetry(job *river.Job[webhookArgs]) time.Time {
	b := w.s.cfg.WebhookBackoff
	i := min(max(job.Attempt-1, 0), len(b)-1)
	if len(b) == 0 {
		return time.Now().Add(time.Minute)
	}
	return time.Now().Add(b[i])
}

// Timeout leaves room for the request and the bookkeeping around it.
func (w *webhookWorker) Timeout(*river.Job[webhookArgs]) time.Duration {
	return w.s.cfg.WebhookTimeout + 30*time.Second
}

func (w *webhookWorker) Work(ctx context.Context, job *river.Job[webhookArgs]) error {
	s, a := w.s, job.Args
	var url string
	var sealed []byte
	var disabled *time.Time
	err := s.pool.QueryRow(ctx, `SELECT url, secret, disabled_at FROM webhook_endpoints WHERE user_id = $1 AND id = $2`,
		a.UserID, a.EndpointID).Scan(&url, &sealed, &disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(errors.New("endpoint deleted"))
	}
	if err != nil {
		return err
	}
	if disabled != nil {
		return river.JobCancel(errors.New("endpoint disabled"))
	}
	ev, err := event(ctx, s.pool, a.UserID, a.EventID)
	if errs.Is(err, errs.NotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	secret, err := s.ring.Open(sealed, a.UserID, secretField, a.EndpointID)
	if err != nil {
		return river.JobCancel(fmt.Errorf("open webhook secret: %w", err))
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return river.JobCancel(err)
	}
	res := s.hooks.send(ctx, url, string(secret), ev.ID, s.cfg.Now(), body)
	if err := s.recordAttempt(ctx, job, ev.Type, url, res); err != nil {
		return err
	}
	if !res.ok() {
		return fmt.Errorf("webhook %s attempt %d: %s", a.EndpointID, job.Attempt, res.err)
	}
	return nil
}

// recordAttempt logs the attempt and keeps the endpoint's failure clock:
// a success clears it; a failure starts it, and one that has run for the
// failure window disables the endpoint and e-mails its owner, in the same
// transaction.
func (s *Service) recordAttempt(ctx context.Context, job *river.Job[webhookArgs], eventType, url string, res attempt) error {
	a, now := job.Args, s.cfg.Now()
	var status *int
	if res.status != 0 {
		status = &res.status
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries
			(endpoint_id, user_id, event_id, event_type, attempt, status_code, error, duration_ms, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			a.EndpointID, a.UserID, a.EventID, eventType, job.Attempt, status, res.err, res.duration.Milliseconds(), now); err != nil {
			return err
		}
		if res.ok() {
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE user_id = $1 AND id = $2`, a.UserID, a.EndpointID)
			return err
		}
		var since time.Time
		err := tx.QueryRow(ctx, `UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $3)
			WHERE user_id = $1 AND id = $2 AND disabled_at IS NULL RETURNING failing_since`, a.UserID, a.EndpointID, now).Scan(&since)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil || now.Sub(since) < s.cfg.FailureWindow {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET disabled_at = $3 WHERE user_id = $1 AND id = $2`,
			a.UserID, a.EndpointID, now); err != nil {
			return err
		}
		s.log.Warn().Str("user_id", a.UserID).Str("endpoint_id", a.EndpointID).Dur("failing_for", now.Sub(since)).
			Msg("webhook endpoint disabled after failing")
		if s.mailer == nil {
			return nil
		}
		_, err = s.river.InsertTx(ctx, tx, disabledEmailArgs{UserID: a.UserID, EndpointID: a.EndpointID, URL: url, Since: since}, nil)
		return err
	})
}
