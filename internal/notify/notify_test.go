package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/notify"
)

var fill = map[string]any{"id": "c-1", "ticker": "AAPL", "side": "BUY", "status": "filled", "quantity": 10}

// TestEnqueueFollowsTheTransaction: an event enqueued in a transaction
// that rolls back is never delivered; one that commits is delivered once
// to each channel, every delivery carrying the event id.
func TestEnqueueFollowsTheTransaction(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	rc := newReceiver(t)
	r.endpoint(t, r.user, rc, notify.OrderFilled)

	errRollback := errors.New("roll back")
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := r.svc.Enqueue(ctx, tx, notify.Event{UserID: r.user, Type: notify.OrderFilled, Data: fill}); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	id := r.enqueue(t, r.user, notify.OrderFilled, fill)

	hits := rc.waitHits(t, 1, 10*time.Second)
	msgs, err := r.mail.WaitFor(ctxWithin(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // room for a wrong second delivery
	hits, _ = rc.snapshot()
	msgs = r.mail.Messages()
	if len(hits) != 1 || hits[0].id != id || hits[0].body["id"] != id || hits[0].body["type"] != notify.OrderFilled {
		t.Fatalf("webhook requests %+v, want one for event %s", hits, id)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0].Header("Message-Id"), id) {
		t.Fatalf("e-mails %+v, want one whose Message-ID carries %s", msgs, id)
	}
	list, err := r.svc.Notifications(ctx, r.user, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if list.UnreadCount != 1 || len(list.Items) != 1 || list.Items[0].ID != id {
		t.Fatalf("in-app %+v, want the one committed event", list)
	}
}

// TestWebhookRetriesKeepTheEventID: an endpoint answering 500 three times
// and then 200 gets four attempts of one event id, each correctly signed,
// and the delivery log shows them.
func TestWebhookRetriesKeepTheEventID(t *testing.T) {
	r := newRig(t, nil)
	rc := newReceiver(t, 500, 500, 500)
	ep := r.endpoint(t, r.user, rc, notify.OrderCancelled)
	id := r.enqueue(t, r.user, notify.OrderCancelled, fill)

	hits := rc.waitHits(t, 4, 15*time.Second)
	var got []int
	for _, h := range hits {
		if h.id != id {
			t.Errorf("attempt carries webhook-id %s, want %s", h.id, id)
		}
		got = append(got, h.status)
	}
	if diff := cmp.Diff([]int{500, 500, 500, 200}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	var log []notify.Delivery
	eventually(t, 5*time.Second, "four logged attempts", func() bool {
		var err error
		log, err = r.svc.Deliveries(context.Background(), r.user, ep.ID, 0)
		return err == nil && len(log) == 4
	})
	type row struct {
		Event   string
		Attempt int
		Status  int
		Failed  bool
	}
	var rows []row
	for i := len(log) - 1; i >= 0; i-- {
		d := log[i]
		rows = append(rows, row{d.EventID, d.Attempt, *d.StatusCode, d.Error != ""})
	}
	want := []row{{id, 1, 500, true}, {id, 2, 500, true}, {id, 3, 500, true}, {id, 4, 200, false}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("delivery log (-want +got):\n%s", diff)
	}
	time.Sleep(300 * time.Millisecond)
	if hits, _ := rc.snapshot(); len(hits) != 4 {
		t.Errorf("%d attempts, want 4", len(hits))
	}
}

// TestWebhookTargetsMustBePublic: without allow-private, loopback and
// link-local targets are refused at creation, and a name that resolves to
// a loopback address is refused when the request connects: the receiver
// never hears of it and the log says why.
func TestWebhookTargetsMustBePublic(t *testing.T) {
	r := newRig(t, func(c *notify.Config) { c.AllowPrivate = false })
	ctx := context.Background()
	for _, u := range []string{"http://127.0.0.1/hook", "https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data",
		"https://[::1]/hook", "https://10.1.2.3/", "http://example.com/hook"} {
		_, err := r.svc.CreateEndpoint(ctx, r.user, notify.NewEndpoint{URL: u, EventTypes: []string{notify.OrderFilled}})
		if e := errs.As(err); e == nil || e.Code != errs.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "url" {
			t.Errorf("CreateEndpoint(%s) = %v, want invalid url", u, err)
		}
	}

	rc := newReceiver(t)
	port := rc.Listener.Addr().String()[strings.LastIndex(rc.Listener.Addr().String(), ":"):]
	ep, err := r.svc.CreateEndpoint(ctx, r.user, notify.NewEndpoint{URL: "https://localhost" + port + "/hook", EventTypes: []string{notify.OrderFilled}})
	if err != nil {
		t.Fatalf("a public-looking name is accepted at creation: %v", err)
	}
	rc.setSecret(ep.Secret)
	r.enqueue(t, r.user, notify.OrderFilled, fill)
	var log []notify.Delivery
	eventually(t, 10*time.Second, "a refused attempt in the log", func() bool {
		log, err = r.svc.Deliveries(ctx, r.user, ep.ID, 0)
		return err == nil && len(log) > 0
	})
	if log[0].StatusCode != nil || !strings.Contains(log[0].Error, "private, loopback or link-local") {
		t.Errorf("attempt %+v, want refused before connecting", log[0])
	}
	if hits, bad := rc.snapshot(); len(hits)+len(bad) != 0 {
		t.Errorf("the loopback receiver was reached: %v %v", hits, bad)
	}
}

// TestFailingEndpointIsDisabled: an endpoint that fails for the whole
// failure window is disabled and its owner e-mailed; a test event turns it
// on again.
func TestFailingEndpointIsDisabled(t *testing.T) {
	r := newRig(t, func(c *notify.Config) {
		c.FailureWindow = 150 * time.Millisecond
		c.WebhookBackoff = []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	})
	ctx := context.Background()
	rc := newReceiver(t, 500, 500, 500, 500, 500, 500)
	ep := r.endpoint(t, r.user, rc, notify.SecuritySignIn)
	r.svc.SetPreferences(ctx, r.user, notify.Preferences{Email: map[string]bool{notify.SecuritySignIn: false}})
	r.enqueue(t, r.user, notify.SecuritySignIn, map[string]any{"ip": "192.0.2.1"})

	msgs, err := r.mail.WaitFor(ctxWithin(t, 15*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if s := msgs[0].Header("Subject"); !strings.Contains(s, "Webhook endpoint disabled") || msgs[0].To[0] != r.email {
		t.Errorf("e-mail %q to %v, want the disabled notice to %s", s, msgs[0].To, r.email)
	}
	eps, err := r.svc.Endpoints(ctx, r.user)
	if err != nil || len(eps) != 1 || eps[0].DisabledAt == nil {
		t.Fatalf("endpoints %+v, %v: want the one disabled", eps, err)
	}
	rc.answerNext()
	hits, _ := rc.snapshot()
	n := len(hits)
	r.enqueue(t, r.user, notify.SecuritySignIn, nil)
	time.Sleep(400 * time.Millisecond)
	if hits, _ := rc.snapshot(); len(hits) != n {
		t.Errorf("a disabled endpoint got %d more requests", len(hits)-n)
	}

	if _, err := r.svc.TestEndpoint(ctx, r.user, ep.ID); err != nil {
		t.Fatal(err)
	}
	hits = rc.waitHits(t, n+1, 10*time.Second)
	if last := hits[len(hits)-1]; last.body["type"] != notify.WebhookTest || last.status != 200 {
		t.Errorf("last request %+v, want a delivered webhook.test", last)
	}
}

// TestPreferences: defaults, a change, and an event that follows it.
func TestPreferences(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	p, err := r.svc.Preferences(ctx, r.user)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got  bool
		want bool
		what string
	}{
		{p.Email[notify.OrderFilled], true, "e-mail order.filled"},
		{p.Email[notify.SecuritySignIn], true, "e-mail security.sign_in"},
		{p.InApp[notify.OrderFailed], true, "in-app order.failed"},
		{p.Email[notify.SignalPublished], false, "e-mail signal.published"},
		{p.Webhook[notify.SignalPublished], true, "webhook signal.published"},
	} {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if _, ok := p.Email[notify.WebhookTest]; ok {
		t.Error("webhook.test is offered as a preference")
	}
	_, err = r.svc.SetPreferences(ctx, r.user, notify.Preferences{Email: map[string]bool{"order.nope": true}})
	if !errs.Is(err, errs.Invalid) {
		t.Errorf("unknown type: %v, want invalid", err)
	}
	p, err = r.svc.SetPreferences(ctx, r.user, notify.Preferences{Email: map[string]bool{notify.OrderFilled: false},
		InApp: map[string]bool{notify.SignalPublished: true}})
	if err != nil || p.Email[notify.OrderFilled] || !p.InApp[notify.SignalPublished] || !p.Email[notify.OrderFailed] {
		t.Fatalf("after the change: %+v, %v", p, err)
	}
	r.enqueue(t, r.user, notify.OrderFilled, fill)
	r.enqueue(t, r.user, notify.OrderFailed, fill)
	msgs, err := r.mail.WaitFor(ctxWithin(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if msgs = r.mail.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Header("Subject"), "Order failed") {
		t.Errorf("e-mails %d (first %q), want only the order.failed one", len(msgs), msgs[0].Header("Subject"))
	}
}

// TestInAppReadAndTenants: mark one read, mark all read; another user's
// notification is not found.
func TestInAppReadAndTenants(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	other, _ := newUser(t, r.pool)
	a := r.enqueue(t, r.user, notify.OrderFailed, fill)
	r.enqueue(t, r.user, notify.OrderUnknown, fill)
	theirs := r.enqueue(t, other, notify.OrderFailed, fill)

	if err := r.svc.MarkRead(ctx, r.user, theirs); !errs.Is(err, errs.NotFound) {
		t.Errorf("marking another user's notification: %v, want not found", err)
	}
	if err := r.svc.MarkRead(ctx, r.user, "not-a-uuid"); !errs.Is(err, errs.NotFound) {
		t.Errorf("a malformed id: %v, want not found", err)
	}
	if err := r.svc.MarkRead(ctx, r.user, a); err != nil {
		t.Fatal(err)
	}
	l, err := r.svc.Notifications(ctx, r.user, false, 0)
	if err != nil || l.UnreadCount != 1 || len(l.Items) != 2 {
		t.Fatalf("after one read: %+v, %v", l, err)
	}
	if err := r.svc.MarkAllRead(ctx, r.user); err != nil {
		t.Fatal(err)
	}
	if l, _ = r.svc.Notifications(ctx, r.user, true, 0); l.UnreadCount != 0 || len(l.Items) != 0 {
		t.Errorf("after read-all: %+v", l)
	}
	if l, _ = r.svc.Notifications(ctx, other, true, 0); l.UnreadCount != 1 {
		t.Errorf("the other user's unread count: %d, want 1", l.UnreadCount)
	}
}

// TestEmailBodies: text and HTML parts from the templates, over implicit
// TLS (smtps://) this time.
func TestEmailBodies(t *testing.T) {
	r := newRigTLS(t, true, nil)
	id := r.enqueue(t, r.user, notify.OrderFilled, map[string]any{"ticker": "<b>MSFT</b>", "side": "BUY", "status": "filled"})
	msgs, err := r.mail.WaitFor(ctxWithin(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(msgs[0].Data)
	for _, want := range []string{"text/plain", "text/html", "Order filled", id, "&lt;b&gt;MSFT&lt;/b&gt;", "ticker: <b>MSFT</b>"} {
		if !strings.Contains(raw, want) {
			t.Errorf("e-mail lacks %q:\n%s", want, raw)
		}
	}
	if msgs[0].To[0] != r.email || !strings.Contains(msgs[0].From, "alerts@ordertune.test") {
		t.Errorf("from %s to %v", msgs[0].From, msgs[0].To)
	}
}

func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
