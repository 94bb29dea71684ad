package auth

import "context"

// SecurityNotifier is told of security events an account's owner should
// hear about by e-mail. The notifications feature (issue 17) implements
// it; until then nothing is sent and the audit trail alone records them.
// Calls come after the event's transaction has committed; they must not
// block for long.
type SecurityNotifier interface {
	// AccountLocked: the account was locked after too many failed
	// sign-in attempts (by anyone who knew its e-mail).
	AccountLocked(ctx context.Context, userID string)
	// SignupWithExistingEmail: someone tried to sign up with the e-mail
	// of this account. Sign-up answers the same for new and existing
	// addresses, so this e-mail is how the owner learns of it.
	SignupWithExistingEmail(ctx context.Context, userID string)
}

// noNotify drops every event: the default until e-mail exists.
type noNotify struct{}

func (noNotify) AccountLocked(context.Context, string)           {}
func (noNotify) SignupWithExistingEmail(context.Context, string) {}
