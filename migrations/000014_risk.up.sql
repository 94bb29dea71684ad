-- Risk limits and switches (issue 16): the platform's ceilings and halts
-- (one row), and each user's own limits, pause and suspension.

-- The platform row: a NULL ceiling means "the environment's value"
-- (ORDERTUNE_MAX_...); a halt is per mode, with the reason users see.
CREATE TABLE risk_platform (
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    max_order_value      numeric(18,2) CHECK (max_order_value >= 0),
    max_shares_per_order bigint CHECK (max_shares_per_order >= 0),
    max_orders_per_day   integer CHECK (max_orders_per_day >= 0),
    max_daily_value      numeric(18,2) CHECK (max_daily_value >= 0),
    halted_live          boolean NOT NULL DEFAULT false,
    halted_paper         boolean NOT NULL DEFAULT false,
    halt_reason          text NOT NULL DEFAULT '',
    updated_by           uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

INSERT INTO risk_platform (id) VALUES (true);

-- One row per user who set a limit, paused, or was suspended; no row
-- means no limits of their own (the ceilings apply) and trading allowed.
CREATE TABLE risk_users (
    user_id              uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    max_order_value      numeric(18,2) CHECK (max_order_value >= 0),
    max_shares_per_order bigint CHECK (max_shares_per_order >= 0),
    max_orders_per_day   integer CHECK (max_orders_per_day >= 0),
    max_daily_value      numeric(18,2) CHECK (max_daily_value >= 0),
    trading_paused       boolean NOT NULL DEFAULT false,
    suspended            boolean NOT NULL DEFAULT false,
    suspended_reason     text NOT NULL DEFAULT '',
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- The day's usage of a user's entry limits is read from confirmations
-- by (user, created_at): confirmations_user_newest serves it.
