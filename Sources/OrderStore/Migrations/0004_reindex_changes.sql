-- What changed while a reindex was loading: the aggregates of every event a
-- live indexer claimed while a reindex was registered (`index_targets`, in
-- force while its lock is held). The reindex re-reads those orders, and every
-- order of those customers, into its new index after its load and again after
-- the alias swap. Before, the live indexers wrote every change into both
-- indexes while a reindex ran, and on a busy cluster the doubled live writes
-- left a reindex no room to finish (`ReindexChanges`).
CREATE TABLE reindex_changes (
    target          text NOT NULL,
    seq             bigserial,
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    PRIMARY KEY (target, seq)
);
