-- A reindex looks its recorded changes up by aggregate: a catch-up read takes
-- along the later records of the aggregates it copies, and each page of the
-- load forgets the records of the orders it read (`ReindexChanges`). Without
-- this index each lookup scans every record of the reindex (tens of thousands
-- of rows per page during a long reindex beside a live load). The table is
-- empty unless a reindex runs, and only then does a claim pay for the index.
CREATE INDEX reindex_changes_by_aggregate ON reindex_changes (target, aggregate_type, aggregate_id);
