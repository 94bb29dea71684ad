// Package notify turns committed changes into events and delivers them at
// least once to each channel a user wants: in-app notifications, e-mail and
// signed webhooks. An event is recorded in the caller's transaction, with
// an outbox row that a dispatcher turns into river jobs (outbox.go), so a
// rolled-back change sends nothing and a committed one is never lost.
package notify
