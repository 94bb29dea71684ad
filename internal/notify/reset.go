package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// resetField names reset tokens in the sealed data's associated data.
const resetField = "password_reset_token"

// ResetPath is the web page a reset link opens; the token travels in the
// URL's fragment, which browsers send to no server (no access log, no
// Referer holds it), and the page posts it.
const ResetPath = "/reset-password"

// ResetLink returns the link of a reset token under publicURL.
func ResetLink(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + ResetPath + "#token=" + url.QueryEscape(token)
}

// resetArgs is one reset e-mail. The token is sealed: river keeps its jobs'
// arguments in clear in its table.
type resetArgs struct {
	UserID    string    `json:"user_id"`
	Token     []byte    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Kind names the job in river's table.
func (resetArgs) Kind() string { return "notify.password_reset" }

// InsertOpts gives up after a few tries: the link is short-lived.
func (resetArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 5} }

// EnqueuePasswordReset queues, in tx (the transaction that stores the
// link), the e-mail carrying a password reset link to userID. The e-mail
// is sent whatever the user's preferences say: they asked for it. Without
// e-mail configured nothing is sent, and the log says so.
func (s *Service) EnqueuePasswordReset(ctx context.Context, tx pgx.Tx, userID, token string, expires time.Time) error {
	if s.mailer == nil {
		s.log.Warn().Str("user_id", userID).Msg("password reset requested, but e-mail is not configured (ORDERTUNE_SMTP_URL)")
		return nil
	}
	if s.ring == nil {
		return errors.New("notify: password reset e-mail needs a master key")
	}
	sealed, err := s.ring.Seal([]byte(token), userID, resetField)
	if err != nil {
		return fmt.Errorf("notify: seal reset token: %w", err)
	}
	if _, err := s.river.InsertTx(ctx, tx, resetArgs{UserID: userID, Token: sealed, ExpiresAt: expires}, nil); err != nil {
		return fmt.Errorf("notify: queue reset e-mail: %w", err)
	}
	return nil
}

type resetWorker struct {
	river.WorkerDefaults[resetArgs]
	s *Service
}

func (w *resetWorker) Work(ctx context.Context, job *river.Job[resetArgs]) error {
	s, a := w.s, job.Args
	if s.mailer == nil {
		return river.JobCancel(errors.New("e-mail is not configured"))
	}
	if !s.cfg.Now().Before(a.ExpiresAt) {
		return river.JobCancel(errors.New("the reset link expired before it could be sent"))
	}
	token, err := s.ring.Open(a.Token, a.UserID, resetField)
	if err != nil {
		return river.JobCancel(fmt.Errorf("open reset token: %w", err))
	}
	to, err := userEmail(ctx, s, a.UserID)
	if err != nil {
		return err
	}
	v := mailView{
		Title: "Reset your password",
		Lines: []string{
			"Someone, hopefully you, asked to reset the password of your Ordertune account.",
			"The link below sets a new password. It works once, until " + a.ExpiresAt.UTC().Format("15:04 MST, 2 Jan 2006") + ".",
			"Signing in afterwards still needs the code from your authenticator app, and every other session of the account ends.",
			"If you did not ask for this, ignore this e-mail: your password stays as it is.",
		},
		Link:     ResetLink(s.mailer.publicURL, string(token)),
		LinkText: "Choose a new password",
		EventID:  "reset-" + strconv.FormatInt(job.ID, 10),
		NoPrefs:  true,
	}
	msg, err := renderView(to, v.EventID, v)
	if err != nil {
		return river.JobCancel(err)
	}
	return s.mailer.send(ctx, msg)
}
