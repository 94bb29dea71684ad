package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/notify/mailcatch"
)

// demoMail runs the demo's mailbox: an SMTP server in this process (with
// STARTTLS, like a real one) that keeps every e-mail the demo sends as a
// .eml file under dir, readable in any mail program or text editor, and
// logs a line for each. cfg is pointed at it unless ORDERTUNE_SMTP_URL
// names a real server. Webhooks may go to local receivers in the demo.
func demoMail(cfg *config.Config, dir string, log zerolog.Logger) (stop func(), err error) {
	cfg.WebhookAllowPrivate = true
	if cfg.SMTPURL != "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	unsafe := regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	mc, err := mailcatch.Start(mailcatch.Options{OnMessage: func(m mailcatch.Message) {
		name := m.At.UTC().Format("20060102T150405.000") + "-" + unsafe.ReplaceAllString(m.Header("Message-Id"), "") + ".eml"
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, m.Data, 0o600); err != nil {
			log.Error().Err(err).Msg("demo mailbox: save e-mail")
			return
		}
		log.Info().Strs("to", m.To).Str("subject", m.Header("Subject")).Str("file", path).Msg("demo mailbox: e-mail received")
	}})
	if err != nil {
		return nil, fmt.Errorf("demo mailbox: %w", err)
	}
	cfg.SMTPURL = "smtp://" + mc.Addr()
	cfg.MailTLS = mc.ClientTLS()
	if cfg.MailFrom == "" {
		cfg.MailFrom = "Ordertune demo <alerts@ordertune.demo>"
	}
	return func() { mc.Close() }, nil
}
