package passthrough_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/passthrough"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// simHost serves the simulator over real HTTP and records every request
// that reaches it, so a test can prove a refused call never got there.
type simHost struct {
	sim *ibkrsim.Server
	srv *httptest.Server

	mu       sync.Mutex
	requests []string // "METHOD /path"

	handshakes atomic.Int64
	sockets    []net.Conn // the simulator's hijacked WebSocket connections
}

// hijackRecorder hands the simulator's WebSocket connections to the host,
// so a test can cut IBKR's side of a stream.
type hijackRecorder struct {
	http.ResponseWriter
	h *simHost
}

func (w hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.ResponseWriter.(http.Hijacker).Hijack()
	if err == nil {
		w.h.mu.Lock()
		w.h.sockets = append(w.h.sockets, c)
		w.h.mu.Unlock()
	}
	return c, rw, err
}

// cutSockets drops every WebSocket connection IBKR's side holds, without a
// close frame, as a network failure would.
func (h *simHost) cutSockets() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.sockets {
		c.Close()
	}
	h.sockets = nil
}

func newSimHost(t testing.TB, cfg ibkrsim.Config) *simHost {
	h := &simHost{sim: ibkrsim.New(cfg)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, ibkrsim.APIPrefix+"/") {
			h.mu.Lock()
			h.requests = append(h.requests, r.Method+" "+strings.TrimPrefix(r.URL.Path, ibkrsim.APIPrefix))
			h.mu.Unlock()
			if r.URL.Path == ibkrsim.APIPrefix+"/oauth/live_session_token" {
				h.handshakes.Add(1)
			}
		}
		if r.URL.Path == ibkrsim.APIPrefix+"/ws" {
			w = hijackRecorder{w, h}
		}
		h.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *simHost) baseURL() string { return h.srv.URL + ibkrsim.APIPrefix }

// seen returns how many requests reached the simulator so far.
func (h *simHost) seen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests)
}

// since returns the requests after the first n.
func (h *simHost) since(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.requests[n:]...)
}

// env is one test's world: a database, the simulator, the broker service
// with its session cache, and a Proxy served over real HTTP at
// /u/{user}/ibkr/{path...} and /u/{user}/ws (the user id stands in for the
// signed-in principal that internal/httpapi supplies).
type env struct {
	t     testing.TB
	pool  *pgxpool.Pool
	sim   *simHost
	svc   *broker.Service
	proxy *passthrough.Proxy
	front *httptest.Server
}

type envOptions struct {
	sim   ibkrsim.Config
	proxy passthrough.Config
	// frontTimeout sets the front server's read and write timeouts, as
	// internal/httpapi's server has them.
	frontTimeout time.Duration
	// cache tunes the broker session cache.
	cache broker.CacheConfig
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, pool: pgtest.Pool(t)}
	e.sim = newSimHost(t, o.sim)
	svc, err := broker.New(broker.Config{
		Pool: e.pool, Ring: seal.RandomRing("k1"),
		IBKR:  ibkr.Options{BaseURL: e.sim.baseURL(), HTTPClient: e.sim.srv.Client()},
		Cache: o.cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	pc := o.proxy
	pc.Sessions = svc.Cache()
	if pc.WebSocket.CheckEvery == 0 {
		pc.WebSocket.CheckEvery = 20 * time.Millisecond
	}
	e.proxy, err = passthrough.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /u/{user}/ibkr/{path...}", func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.EscapedPath(), "/u/"+r.PathValue("user")+"/ibkr/")
		if err := e.proxy.Forward(w, r, r.PathValue("user"), rest); err != nil {
			writeProblem(w, err)
		}
	})
	mux.HandleFunc("GET /u/{user}/ws", func(w http.ResponseWriter, r *http.Request) {
		if err := e.proxy.ServeWebSocket(w, r, r.PathValue("user")); err != nil {
			writeProblem(w, err)
		}
	})
	e.front = httptest.NewUnstartedServer(mux)
	e.front.Config.ReadTimeout, e.front.Config.WriteTimeout = o.frontTimeout, o.frontTimeout
	e.front.Start()
	t.Cleanup(e.front.Close)
	return e
}

// writeProblem answers the error's code and Retry-After; the statuses
// mirror internal/httpapi's table for the codes the proxy returns.
func writeProblem(w http.ResponseWriter, err error) {
	e := errs.As(err)
	if e == nil {
		e = &errs.Error{Code: errs.Internal}
	}
	status := map[errs.Code]int{
		errs.Invalid: 400, errs.Forbidden: 403, errs.BrokerRateLimited: 429, errs.BrokerUnavailable: 502,
		errs.BrokerTokenExpired: 422, errs.BrokerNotConnected: 422,
	}[e.Code]
	if status == 0 {
		status = 500
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": e.Code, "detail": e.Message})
}

// tenant is one user with a saved paper connection to its own simulated
// consumer and account.
type tenant struct {
	id, account, consumerKey string
	creds                    ibkrsim.UserCredentials
}

// tenant registers a consumer for a fresh account and saves it as a new
// user's paper connection.
func (e *env) tenant(account string) tenant {
	e.t.Helper()
	u := simtest.AddConsumer(e.t, e.sim.sim, account)
	var id string
	err := e.pool.QueryRow(context.Background(), `INSERT INTO users (email, role, password_hash, created_at, updated_at)
		VALUES ('u-' || gen_random_uuid() || '@example.test', 'subscriber', '!', now(), now()) RETURNING id`).Scan(&id)
	if err != nil {
		e.t.Fatalf("insert user: %v", err)
	}
	in := broker.Input{
		ConsumerKey: u.ConsumerKey, AccessToken: u.AccessToken, AccessTokenSecret: u.AccessTokenSecret,
		SignatureKeyPEM: u.SignaturePrivateKeyPEM, EncryptionKeyPEM: u.EncryptionPrivateKeyPEM,
		DHParams: u.DHPrimeHex, AccountID: u.AccountID,
	}
	if _, err := e.svc.Save(context.Background(), id, broker.Paper, in, broker.Actor{UserID: id}); err != nil {
		e.t.Fatalf("save connection: %v", err)
	}
	return tenant{id: id, account: u.AccountID, consumerKey: u.ConsumerKey, creds: u}
}

// warm makes the tenant's session ready (handshake, brokerage session,
// accounts), so later calls reach IBKR with nothing but themselves.
func (e *env) warm(tn tenant) {
	e.t.Helper()
	if _, _, err := e.svc.Cache().Session(ctxT(e.t), tn.id); err != nil {
		e.t.Fatalf("warm session: %v", err)
	}
}

// placeOrder places an order on the tenant's account through the same
// cached session the proxy uses.
func (e *env) placeOrder(tn tenant, coid string) {
	e.t.Helper()
	err := e.svc.Cache().Do(ctxT(e.t), tn.id, func(ctx context.Context, s *ibkr.Session, conn broker.Conn) error {
		_, err := s.PlaceOrder(ctx, conn.AccountID, ibkr.Order{Conid: 265598, COID: coid, OrderType: "MKT", Side: "BUY", Quantity: 3, TIF: "DAY"}, ibkr.ConfirmMessageIDs("o163", "o354"))
		return err
	})
	if err != nil {
		e.t.Fatalf("place order %s: %v", coid, err)
	}
}

// get calls the front as the tenant; pathQuery is below /ibkr/.
func (e *env) get(tn tenant, pathQuery string) (int, http.Header, []byte) {
	e.t.Helper()
	resp, err := e.front.Client().Get(e.front.URL + "/u/" + tn.id + "/ibkr/" + pathQuery)
	if err != nil {
		e.t.Fatalf("GET %s: %v", pathQuery, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// getRaw calls the front as the tenant with rawQuery sent exactly as given,
// bytes a URL parser would drop (a '#') included.
func (e *env) getRaw(tn tenant, path, rawQuery string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.front.URL+"/u/"+tn.id+"/ibkr/"+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.URL.RawQuery = rawQuery
	resp, err := e.front.Client().Do(req)
	if err != nil {
		e.t.Fatalf("GET %s?%s: %v", path, rawQuery, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
