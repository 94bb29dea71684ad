-- Tenant session leases (issue 18): each (user, mode) IBKR session is owned
-- by one replica of `ordertune serve` at a time. Only the owner hand-shakes,
-- opens the brokerage session, tickles, places and cancels orders and serves
-- the pass-through for the tenant; the others forward the tenant's requests
-- to owner_url. A lease is live while expires_at is in the future (database
-- time); every replica renews all of its leases in one statement per
-- interval. generation grows with every change of owner: a replica acts on a
-- tenant only under the generation it acquired (fencing).
CREATE TABLE broker_session_leases (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode        text NOT NULL CHECK (mode IN ('live', 'paper')),
    owner       text NOT NULL CHECK (owner <> ''),
    owner_url   text NOT NULL,
    generation  bigint NOT NULL DEFAULT 1,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, mode)
);

-- The batch renewal and the release on shutdown select by owner.
CREATE INDEX broker_session_leases_owner ON broker_session_leases (owner);

GRANT SELECT, INSERT, UPDATE, DELETE ON broker_session_leases TO ordertune_app;
