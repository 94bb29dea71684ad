-- IBKR's answers in the user's words (issue 24).

-- A reply question IBKR asked before taking an order, and Ordertune's
-- answer, in the confirmation's status history: {"message_ids": [...],
-- "text": ..., "answer": "confirmed" | "declined", "reason": ...}.
ALTER TABLE confirmation_events ADD COLUMN question jsonb;

-- An admin's override of the platform's reply-question allowlist for one
-- user; no row means the platform default. An empty list surfaces every
-- question: any question fails the confirmation with IBKR's text.
CREATE TABLE reply_question_overrides (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    allowed    text[] NOT NULL CHECK (cardinality(allowed) <= 50),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_at timestamptz NOT NULL
);

-- What Ordertune does while another login holds the user's IBKR
-- brokerage session: take it back at the next order (no row: the
-- default) or wait until it is free.
CREATE TABLE broker_session_prefs (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    on_competing text NOT NULL CHECK (on_competing IN ('take_back', 'wait')),
    updated_at   timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON reply_question_overrides, broker_session_prefs TO ordertune_app;
