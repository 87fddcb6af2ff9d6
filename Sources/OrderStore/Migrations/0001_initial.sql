-- Identifiers use the "C" collation: byte order, the same order Elasticsearch
-- sorts keywords in, so PostgreSQL and the index can be walked in step.
-- Write model: normalized customers, orders and order lines; the outbox that
-- feeds the read side; idempotency keys for safe client retries.

CREATE TABLE customers (
    id          text COLLATE "C" PRIMARY KEY,
    version     integer NOT NULL CHECK (version >= 1),
    name        text NOT NULL,
    email       text NOT NULL,
    country     char(2) NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- E-mail addresses are unique regardless of case.
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email));

CREATE TABLE orders (
    id                 text COLLATE "C" PRIMARY KEY,
    version            integer NOT NULL CHECK (version >= 1),
    status             text NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    customer_id        text COLLATE "C" NOT NULL REFERENCES customers (id),
    currency           char(3) NOT NULL,
    total              numeric(16, 2) NOT NULL CHECK (total > 0),
    ship_line1         text NOT NULL,
    ship_line2         text,
    ship_city          text NOT NULL,
    ship_postal_code   text NOT NULL,
    ship_country       char(2) NOT NULL,
    note               text,
    payment_reference  text,
    carrier            text,
    tracking_number    text,
    cancel_reason      text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    paid_at            timestamptz,
    shipped_at         timestamptz,
    delivered_at       timestamptz,
    cancelled_at       timestamptz
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id, id);

CREATE TABLE order_items (
    order_id    text COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    sku         text NOT NULL,
    name        text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price  numeric(12, 2) NOT NULL CHECK (unit_price > 0 AND unit_price <= 1000000),
    PRIMARY KEY (order_id, position),
    UNIQUE (order_id, sku)
);

-- A successful command's response, kept so a retry with the same key replays it.
CREATE TABLE idempotency_keys (
    key              text PRIMARY KEY,
    request_hash     text NOT NULL,
    status           integer NOT NULL,
    response_headers jsonb NOT NULL,
    response_body    text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Transactional outbox: one row per domain event, inserted in the same
-- transaction as the state change. Readers claim rows with
-- FOR UPDATE SKIP LOCKED and delete them only after Elasticsearch acknowledged,
-- so a row of a transaction that commits late is simply claimed later (no
-- offset can skip it). transaction_id records the writing transaction for
-- diagnostics and for readers that track xid8 snapshots instead.
CREATE TABLE outbox (
    id                 bigserial PRIMARY KEY,
    transaction_id     xid8 NOT NULL DEFAULT pg_current_xact_id(),
    aggregate_type     text NOT NULL,
    aggregate_id       text NOT NULL,
    aggregate_version  integer NOT NULL,
    event_type         text NOT NULL,
    payload            jsonb NOT NULL,
    occurred_at        timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts           integer NOT NULL DEFAULT 0
);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Events whose document Elasticsearch refused permanently (HTTP 400).
CREATE TABLE dead_letters (
    id                 bigserial PRIMARY KEY,
    aggregate_type     text NOT NULL,
    aggregate_id       text NOT NULL,
    aggregate_version  integer NOT NULL,
    event_type         text NOT NULL,
    payload            jsonb NOT NULL,
    occurred_at        timestamptz NOT NULL,
    error_status       integer NOT NULL,
    error_type         text,
    failed_at          timestamptz NOT NULL DEFAULT now()
);

-- Extra indices the indexer writes to besides the alias (a reindex's new index
-- while it catches up). Indexers read this under FOR SHARE so a reindex can
-- wait for in-flight batches before it drops a target.
CREATE TABLE index_targets (
    index_name  text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
