-- Signals, position sizes, the conid cache, confirmations with their
-- append-only status history, and the head of the audit hash chain.

CREATE TABLE signals (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ticker       text NOT NULL CHECK (ticker ~ '^[A-Z][A-Z0-9.]{0,9}$'),
    strategy     text NOT NULL CHECK (strategy IN ('I','II','III','IV','V','VI','VII','VIII','IX')),
    kind         text NOT NULL CHECK (kind IN ('entry', 'exit')),
    signal_date  date NOT NULL,
    entry_date   date NOT NULL,
    -- Decimals are numeric, never floating point: they travel as strings.
    ref_close    numeric(18,6) NOT NULL CHECK (ref_close > 0),
    rsi2         numeric(12,6) NOT NULL,
    return_2d    numeric(12,6) NOT NULL,
    entry_mode   text NOT NULL CHECK (entry_mode IN ('next_open_market', 'next_open_limit', 'signal_close')),
    limit_price  numeric(18,6) CHECK (limit_price > 0),
    expires_at   timestamptz NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL,
    withdrawn_at timestamptz,
    CHECK ((entry_mode = 'next_open_limit') = (limit_price IS NOT NULL))
);

CREATE INDEX signals_newest ON signals (created_at DESC, id DESC);
CREATE INDEX signals_match ON signals (strategy, ticker, kind);

-- One row per user who set a position size; no row means "off".
CREATE TABLE position_sizes (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    mode       text NOT NULL CHECK (mode IN ('off', 'dollars', 'shares')),
    value      numeric(18,2),
    updated_at timestamptz NOT NULL,
    CHECK ((mode = 'off') = (value IS NULL)),
    CHECK (value IS NULL OR value > 0)
);

-- Conids never change; the US stock listing is looked up once per ticker.
CREATE TABLE conids (
    ticker      text PRIMARY KEY,
    conid       bigint NOT NULL CHECK (conid > 0),
    exchange    text NOT NULL DEFAULT '',
    resolved_at timestamptz NOT NULL
);

-- A confirmation is committed as 'pending' before any call to IBKR; its id
-- is the IBKR client order id (cOID).
CREATE TABLE confirmations (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id),
    signal_id         uuid NOT NULL REFERENCES signals (id),
    side              text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    idempotency_key   text NOT NULL,
    request_hash      bytea NOT NULL,
    ticker            text NOT NULL,
    conid             bigint,
    quantity          bigint NOT NULL CHECK (quantity > 0),
    order_type        text NOT NULL CHECK (order_type IN ('MKT', 'LMT', 'MOC')),
    tif               text NOT NULL CHECK (tif IN ('OPG', 'DAY')),
    limit_price       numeric(18,6),
    ref_price         numeric(18,6) NOT NULL,
    mode              text NOT NULL CHECK (mode IN ('live', 'paper')),
    account_id_masked text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'submitted', 'filled', 'partially_filled', 'cancelled', 'failed', 'unknown')),
    broker_order_id   text,
    broker_status     text,
    filled_quantity   numeric(18,4) NOT NULL DEFAULT 0,
    avg_fill_price    numeric(18,6),
    error_code        text,
    error_message     text,
    -- When the reconciliation worker should look at the row next; NULL
    -- once the row is settled for good.
    next_check_at     timestamptz,
    -- Reconciliation passes that did not find the order at IBKR.
    misses            integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

-- The same Idempotency-Key of a user always means the same confirmation.
CREATE UNIQUE INDEX confirmations_idempotency ON confirmations (user_id, idempotency_key);
-- At most one live confirmation per (user, signal, side): this index, not
-- application code, is what makes a double click harmless.
CREATE UNIQUE INDEX confirmations_live ON confirmations (user_id, signal_id, side)
    WHERE status NOT IN ('failed', 'cancelled');
CREATE INDEX confirmations_user_newest ON confirmations (user_id, created_at DESC, id DESC);
CREATE INDEX confirmations_newest ON confirmations (created_at DESC, id DESC);
CREATE INDEX confirmations_due ON confirmations (next_check_at) WHERE next_check_at IS NOT NULL;

-- The status history: append-only, enforced by the trigger below.
CREATE TABLE confirmation_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    confirmation_id uuid NOT NULL REFERENCES confirmations (id),
    at              timestamptz NOT NULL,
    status          text NOT NULL,
    broker_status   text,
    filled_quantity numeric(18,4),
    avg_fill_price  numeric(18,6),
    error_code      text,
    message         text NOT NULL DEFAULT ''
);

CREATE INDEX confirmation_events_confirmation ON confirmation_events (confirmation_id, id);

CREATE FUNCTION confirmation_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'confirmation_events is append-only';
END;
$$;

CREATE TRIGGER confirmation_events_append_only
    BEFORE UPDATE OR DELETE ON confirmation_events
    FOR EACH ROW EXECUTE FUNCTION confirmation_events_append_only();

-- The newest sealed entry of the audit hash chain, so that cutting rows off
-- the end of the chain is detected too.
CREATE TABLE audit_chain_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL,
    hash bytea NOT NULL
);
