package notify

import (
	"slices"
	"strings"
	"time"
)

// The event types, as API.md lists them.
const (
	SignalPublished          = "signal.published"
	OrderSubmitted           = "order.submitted"
	OrderFilled              = "order.filled"
	OrderPartiallyFilled     = "order.partially_filled"
	OrderCancelled           = "order.cancelled"
	OrderFailed              = "order.failed"
	OrderUnknown             = "order.unknown"
	BrokerSessionLost        = "broker.session_lost"
	BrokerCompetingSession   = "broker.competing_session"
	BrokerConnectionRestored = "broker.connection_restored"
	BrokerActivated          = "broker.activated"
	RiskLimitHit             = "risk.limit_hit"
	TradingHalted            = "trading.halted"
	SecuritySignIn           = "security.sign_in"
	SecurityPasswordChanged  = "security.password_changed"
	SecurityTokenCreated     = "security.token_created"
	// SecurityAccountLocked and SecuritySignupAttempt tell an account's
	// owner that failed sign-ins locked it, and that someone tried to sign
	// up with its address (the sign-up answers the same either way).
	SecurityAccountLocked = "security.account_locked"
	SecuritySignupAttempt = "security.signup_attempt"
	WebhookTest           = "webhook.test"
)

// Types returns every event type, in API.md's order.
func Types() []string {
	return []string{
		SignalPublished, OrderSubmitted, OrderFilled, OrderPartiallyFilled, OrderCancelled, OrderFailed, OrderUnknown,
		BrokerSessionLost, BrokerCompetingSession, BrokerConnectionRestored, BrokerActivated,
		RiskLimitHit, TradingHalted, SecuritySignIn, SecurityPasswordChanged, SecurityTokenCreated,
		SecurityAccountLocked, SecuritySignupAttempt, WebhookTest,
	}
}

// KnownType reports whether t is one of the event types.
func KnownType(t string) bool { return slices.Contains(Types(), t) }

// The delivery channels, as named in preferences.
const (
	ChannelInApp   = "in_app"
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Channels returns the channels in the order preferences list them.
func Channels() []string { return []string{ChannelEmail, ChannelWebhook, ChannelInApp} }

// Event is something a user is told about. Data is marshalled to JSON as
// the event's data (for order.* events, the confirmation).
type Event struct {
	UserID string
	Type   string
	Data   any
}

// Notification is an event as the user sees it, in-app or in a webhook's
// body.
type Notification struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	CreatedAt time.Time  `json:"created_at"`
	Data      any        `json:"data"`
	ReadAt    *time.Time `json:"read_at,omitempty"`
}

// defaultOn reports whether channel delivers events of type t for a user
// who has not chosen: order outcomes and security events go to the bell and
// by e-mail, everything a user can act on shows in the bell, and webhooks
// carry whatever their endpoint subscribed to.
func defaultOn(channel, t string) bool {
	if t == WebhookTest {
		return channel == ChannelWebhook
	}
	outcome := strings.HasPrefix(t, "order.") && t != OrderSubmitted
	security := strings.HasPrefix(t, "security.")
	switch channel {
	case ChannelWebhook:
		return true
	case ChannelEmail:
		return outcome || security || t == BrokerActivated || t == BrokerCompetingSession || t == TradingHalted
	case ChannelInApp:
		return t != SignalPublished
	}
	return false
}
