-- Uptime reports rewrite node_liveness all day long. For those updates to
-- be HOT (heap-only: no index entries written, the old row version pruned
-- from its page without VACUUM), no index may cover a column a report
-- changes, and each page needs room for the new versions. The index on
-- last_seen made every report a full update with new index entries, and
-- the table bloated under constant reporting; the online filters of
-- GET /nodes probe node_liveness by node_id and never used it.
DROP INDEX IF EXISTS node_liveness_last_seen_idx;

-- Room on every page for the new row versions of its rows, and vacuum
-- early and without throttling: the table is small (about 70 bytes a
-- row) and almost all of its churn is HOT, so a vacuum is cheap. The
-- fill factor applies to pages written from now on; VACUUM FULL or
-- pg_repack rewrites the pages of an existing table.
ALTER TABLE node_liveness SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);

-- Every signed request v2 inserts a nonce and the registrar deletes the
-- expired ones every minute: vacuum the deleted ones away promptly so that
-- the table and its index stay the size of a few minutes of requests.
ALTER TABLE nonces SET (
    autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0
);
