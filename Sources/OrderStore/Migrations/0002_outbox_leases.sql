-- Leases instead of long claim transactions (guarantee 6).
--
-- An indexer worker claims rows by writing its name and an expiry into them in
-- one short statement, talks to Elasticsearch with no transaction open, and
-- deletes the rows once their documents were acknowledged. A crashed, stopped
-- or sick worker's rows become claimable again when the lease lapses (or at
-- once, when it releases them), so no PostgreSQL transaction ever waits on
-- Elasticsearch, however long an outage lasts.
--
-- fanout_after: how far the fan-out of a customer change has got (the last
-- order id re-indexed), so that any indexer resumes it after a crash instead
-- of starting again.
ALTER TABLE outbox
    ADD COLUMN lease_owner  text,
    ADD COLUMN lease_until  timestamptz,
    ADD COLUMN fanout_after text COLLATE "C";

-- Verify asks "is an event still pending for this order or its customer?".
CREATE INDEX outbox_aggregate ON outbox (aggregate_type, aggregate_id);

-- A self-heal rebuild in progress (guarantee 5): written before the new index's
-- alias is created, deleted when the load is done. An indexer killed half-way
-- leaves the row behind, and the next indexer to take the rebuild lock loads
-- everything again, so a partly filled index never passes for a complete one.
CREATE TABLE index_rebuilds (
    alias       text PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now()
);
