-- The ledger (issue 19): IBKR's executions, kept forever (IBKR's own list
-- reaches back 7 days), matched to the confirmations whose orders they
-- filled; and what the ledger derives onto a confirmation.

CREATE TABLE executions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id),
    mode                text NOT NULL CHECK (mode IN ('live', 'paper')),
    account_id_masked   text NOT NULL,
    -- IBKR's execution id: one fill, stored once per tenant however often
    -- it is read.
    broker_execution_id text NOT NULL CHECK (broker_execution_id <> ''),
    broker_order_id     text,
    -- The order's client order id as IBKR reported it (ours are
    -- confirmation ids; another front end's are anything).
    coid                text,
    -- The confirmation whose order this filled; NULL for an execution of an
    -- order not placed through Ordertune (external), which is never
    -- attributed to a signal.
    confirmation_id     uuid REFERENCES confirmations (id),
    external            boolean NOT NULL,
    ticker              text NOT NULL,
    conid               bigint,
    side                text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity            numeric(18,4) NOT NULL CHECK (quantity > 0),
    price               numeric(18,6) NOT NULL CHECK (price > 0),
    -- NULL until IBKR reports it.
    commission          numeric(18,6) CHECK (commission >= 0),
    executed_at         timestamptz NOT NULL,
    imported_at         timestamptz NOT NULL,
    CHECK (external = (confirmation_id IS NULL))
);

CREATE UNIQUE INDEX executions_once ON executions (user_id, broker_execution_id);
CREATE INDEX executions_user_time ON executions (user_id, executed_at DESC, id DESC);
CREATE INDEX executions_confirmation ON executions (confirmation_id) WHERE confirmation_id IS NOT NULL;

-- A confirmation's commission (the sum over its executions; NULL before
-- any) and, for an entry, whether its exits have sold all it bought.
ALTER TABLE confirmations
    ADD COLUMN commission numeric(18,6),
    ADD COLUMN closed boolean NOT NULL DEFAULT false;

-- History is never removed: the server may add and complete executions
-- (a commission reported later, a match found later), not delete them.
REVOKE DELETE, TRUNCATE ON executions FROM ordertune_app;
CREATE TRIGGER executions_never_truncated BEFORE TRUNCATE ON executions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
