-- Every claim records the aggregates it claimed for a running reindex
-- (`ReindexChanges.recordClaimedSQL`). Written into the claim statement, that
-- part (an insert, and a read of pg_locks to see whether the reindex that
-- registered still runs) was planned with every claim, since the indexer plans
-- every execution: about 0.25 ms of the claim's 0.4 ms of planning, paid on
-- every batch though a reindex seldom runs. In a PL/pgSQL function the check
-- whether any target is registered has no parameters, so its plan is kept for
-- the session; the rest is planned only while a target is registered.
--
-- The function's statements take their own snapshot, later than the claim's:
-- they see every registration the claim would, and perhaps a later one, for
-- which recording is only redundant (that reindex's load reads the change).
-- A registration is in force only while its reindex holds the advisory lock
-- whose pg_locks key the caller passes (`AdvisoryLock.reindex`).
CREATE FUNCTION record_reindex_changes(claimed_types text[], claimed_ids text[], lock_classid oid, lock_objid oid)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM index_targets) THEN
        RETURN;
    END IF;
    INSERT INTO reindex_changes (target, aggregate_type, aggregate_id)
    SELECT DISTINCT t.index_name, c.claimed_type, c.claimed_id
    FROM unnest(claimed_types, claimed_ids) AS c(claimed_type, claimed_id) CROSS JOIN index_targets t
    WHERE EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.granted
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND l.classid = lock_classid AND l.objid = lock_objid AND l.objsubid = 1);
END
$$;
