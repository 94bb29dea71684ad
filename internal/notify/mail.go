package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/riverqueue/river"
	"github.com/wneessen/go-mail"

	"github.com/ordertune/ordertune/internal/errs"
)

// mailer sends e-mail through the SMTP server of ORDERTUNE_SMTP_URL.
type mailer struct {
	from      string
	publicURL string
	opts      []mail.Option
	host      string
}

// newMailer parses the SMTP URL: smtp:// requires STARTTLS (port 587 by
// default), smtps:// is TLS from the first byte (port 465). A user and
// password in the URL are sent with SMTP AUTH PLAIN, only over TLS.
func newMailer(cfg Config) (*mailer, error) {
	u, err := url.Parse(cfg.SMTPURL)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("ORDERTUNE_SMTP_URL: want smtp://user:pass@host:587 or smtps://user:pass@host:465")
	}
	if cfg.MailFrom == "" {
		return nil, errors.New("ORDERTUNE_MAIL_FROM is not set: e-mail needs a sender address")
	}
	tlsCfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.MailTLS != nil {
		tlsCfg = cfg.MailTLS.Clone()
		if tlsCfg.ServerName == "" {
			tlsCfg.ServerName = u.Hostname()
		}
	}
	opts := []mail.Option{mail.WithTimeout(30 * time.Second), mail.WithTLSConfig(tlsCfg)}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "587"
		}
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "smtps":
		if port == "" {
			port = "465"
		}
		opts = append(opts, mail.WithSSL())
	default:
		return nil, errors.New("ORDERTUNE_SMTP_URL: the scheme must be smtp (STARTTLS) or smtps (implicit TLS)")
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, errors.New("ORDERTUNE_SMTP_URL: invalid port")
	}
	opts = append(opts, mail.WithPort(p))
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(u.User.Username()), mail.WithPassword(pass))
	}
	return &mailer{from: cfg.MailFrom, publicURL: cfg.PublicURL, opts: opts, host: u.Hostname()}, nil
}

// message is one rendered e-mail.
type message struct {
	to, subject, text, html string
	id                      string // the Message-ID's local part: the event id
}

func (m *mailer) send(ctx context.Context, msg message) error {
	c, err := mail.NewClient(m.host, m.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	e := mail.NewMsg()
	if err := e.From(m.from); err != nil {
		return river.JobCancel(fmt.Errorf("sender address: %w", err))
	}
	if err := e.To(msg.to); err != nil {
		return river.JobCancel(fmt.Errorf("recipient address: %w", err))
	}
	e.Subject(msg.subject)
	e.SetMessageIDWithValue(msg.id + "@ordertune")
	e.SetDate()
	e.SetBodyString(mail.TypeTextPlain, msg.text)
	e.AddAlternativeString(mail.TypeTextHTML, msg.html)
	if err := c.DialAndSendWithContext(ctx, e); err != nil {
		return fmt.Errorf("send e-mail: %w", err)
	}
	return nil
}

// mailView is what the templates see.
type mailView struct {
	Title   string
	Lines   []string
	Fields  [][2]string
	Link    string
	EventID string
	// LinkText names the link; default "Open Ordertune".
	LinkText string
	// NoPrefs leaves out the preferences footer: for e-mails that are
	// not notifications (a reset link asked for).
	NoPrefs bool
}

var textMail = texttemplate.Must(texttemplate.New("text").Parse(`{{.Title}}
{{range .Lines}}
{{.}}
{{end}}{{if .Fields}}
{{range .Fields}}{{index . 0}}: {{index . 1}}
{{end}}{{end}}
{{if .Link}}{{if .LinkText}}{{.LinkText}}{{else}}Open Ordertune{{end}}: {{.Link}}
{{end}}
Event id: {{.EventID}}
{{if not .NoPrefs}}You can choose which e-mails you get in Settings → Notifications.
{{end}}`))

var htmlMail = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family: sans-serif; color: #1a1a1a">
<h1 style="font-size: 18px">{{.Title}}</h1>
{{range .Lines}}<p>{{.}}</p>
{{end}}{{if .Fields}}<table>{{range .Fields}}<tr><th style="text-align: left; padding-right: 12px">{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>{{end}}
{{if .Link}}<p><a href="{{.Link}}">{{if .LinkText}}{{.LinkText}}{{else}}Open Ordertune{{end}}</a></p>{{end}}
<p style="color: #555; font-size: 12px">Event id: {{.EventID}}.{{if not .NoPrefs}} You can choose which e-mails you get in Settings → Notifications.{{end}}</p>
</body></html>
`))

// titles are the subjects of the event types.
var titles = map[string]string{
	SignalPublished:          "New signal published",
	OrderSubmitted:           "Order submitted",
	OrderFilled:              "Order filled",
	OrderPartiallyFilled:     "Order partially filled",
	OrderCancelled:           "Order cancelled",
	OrderFailed:              "Order failed",
	OrderUnknown:             "Order outcome unknown",
	BrokerSessionLost:        "IBKR session lost",
	BrokerCompetingSession:   "IBKR session taken over by another login",
	BrokerConnectionRestored: "IBKR connection restored",
	BrokerActivated:          "IBKR credentials activated",
	RiskLimitHit:             "Risk limit reached",
	TradingHalted:            "Trading halted",
	SecuritySignIn:           "New sign-in to your account",
	SecurityPasswordChanged:  "Your password was changed",
	SecurityTokenCreated:     "An API token was created",
	SecurityAccountLocked:    "Your account was locked after failed sign-ins",
	SecuritySignupAttempt:    "Someone tried to sign up with your address",
	WebhookTest:              "Webhook test",
}

// Title returns the human title of an event type.
func Title(t string) string {
	if s, ok := titles[t]; ok {
		return s
	}
	return t
}

// shownFields are the data fields an e-mail lists, in this order; others
// stay in the app.
var shownFields = []string{"ticker", "side", "status", "quantity", "filled_quantity", "avg_price", "mode",
	"error_message", "ip", "user_agent", "name", "message"}

func render(to, eventID, typ string, data json.RawMessage, link string) (message, error) {
	v := mailView{Title: Title(typ), Link: link, EventID: eventID}
	var m map[string]any
	if json.Unmarshal(data, &m) == nil {
		for _, k := range shownFields {
			if val, ok := m[k]; ok && val != nil && fmt.Sprint(val) != "" {
				v.Fields = append(v.Fields, [2]string{strings.ReplaceAll(k, "_", " "), fmt.Sprint(val)})
			}
		}
	}
	return renderView(to, eventID, v)
}

func renderView(to, id string, v mailView) (message, error) {
	var t, h bytes.Buffer
	if err := textMail.Execute(&t, v); err != nil {
		return message{}, err
	}
	if err := htmlMail.Execute(&h, v); err != nil {
		return message{}, err
	}
	return message{to: to, subject: "Ordertune: " + v.Title, text: t.String(), html: h.String(), id: id}, nil
}

// emailArgs is one event to e-mail to its user.
type emailArgs struct {
	UserID  string `json:"user_id"`
	EventID string `json:"event_id"`
}

// Kind names the job in river's table.
func (emailArgs) Kind() string { return "notify.email" }

// InsertOpts makes an event's e-mail unique: it is queued once.
func (emailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 12, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func (a emailArgs) userID() string { return a.UserID }

// compose renders the event's e-mail; a gone event or one that does not
// render is final.
func (a emailArgs) compose(ctx context.Context, s *Service, to string, _ int64) (message, error) {
	ev, err := event(ctx, s.pool, a.UserID, a.EventID)
	if errs.Is(err, errs.NotFound) {
		return message{}, river.JobCancel(err)
	}
	if err != nil {
		return message{}, err
	}
	msg, err := render(to, ev.ID, ev.Type, ev.Data.(json.RawMessage), s.mailer.publicURL)
	if err != nil {
		return message{}, river.JobCancel(err)
	}
	return msg, nil
}

// mailJob is a job that e-mails one user: it names the user and composes
// the message (an error that must not be retried is a river.JobCancel).
type mailJob interface {
	river.JobArgs
	userID() string
	compose(ctx context.Context, s *Service, to string, jobID int64) (message, error)
}

// mailWorker sends the e-mail a job composes to the job's user.
type mailWorker[A mailJob] struct {
	river.WorkerDefaults[A]
	s *Service
}

type (
	emailWorker         = mailWorker[emailArgs]
	disabledEmailWorker = mailWorker[disabledEmailArgs]
)

// Work sends the e-mail the job composes; without a mailer the job is
// cancelled, as no retry would send it.
func (w *mailWorker[A]) Work(ctx context.Context, job *river.Job[A]) error {
	s := w.s
	if s.mailer == nil {
		return river.JobCancel(errors.New("e-mail is not configured"))
	}
	to, err := userEmail(ctx, s, job.Args.userID())
	if err != nil {
		return err
	}
	msg, err := job.Args.compose(ctx, s, to, job.ID)
	if err != nil {
		return err
	}
	return s.mailer.send(ctx, msg)
}

func userEmail(ctx context.Context, s *Service, userID string) (string, error) {
	var to string
	if err := s.pool.QueryRow(ctx, `SELECT email FROM users WHERE id = $1`, userID).Scan(&to); err != nil {
		return "", fmt.Errorf("user e-mail: %w", err)
	}
	return to, nil
}

// disabledEmailArgs tells an owner that their endpoint was disabled.
type disabledEmailArgs struct {
	UserID     string    `json:"user_id"`
	EndpointID string    `json:"endpoint_id"`
	URL        string    `json:"url"`
	Since      time.Time `json:"since"`
}

// Kind names the job in river's table.
func (disabledEmailArgs) Kind() string { return "notify.webhook_disabled_email" }

func (a disabledEmailArgs) userID() string { return a.UserID }

// compose writes the notice; one that does not render is final.
func (a disabledEmailArgs) compose(_ context.Context, s *Service, to string, jobID int64) (message, error) {
	v := mailView{
		Title: "Webhook endpoint disabled",
		Lines: []string{
			"Your webhook endpoint " + a.URL + " has failed every delivery since " + a.Since.UTC().Format(time.RFC1123) + ", so it was disabled.",
			"Fix the endpoint, then send a test event from Settings → Webhooks to turn it on again.",
		},
		Link:    s.mailer.publicURL,
		EventID: a.EndpointID,
	}
	msg, err := renderView(to, "disabled-"+a.EndpointID+"-"+strconv.FormatInt(jobID, 10), v)
	if err != nil {
		return message{}, river.JobCancel(err)
	}
	return msg, nil
}
