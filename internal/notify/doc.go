// Package notify turns committed changes into events and delivers them at
// least once to each channel a user wants: in-app notifications, e-mail and
// signed webhooks. Events are queued with river in the caller's
// transaction, so a rolled-back change sends nothing and a committed one is
// never lost.
package notify
