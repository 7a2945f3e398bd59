-- Uptime reports rewrite node_liveness all day long; an index on
-- last_seen is rewritten with each of them, and no query uses it (the
-- online filters of GET /nodes probe node_liveness by node_id). The
-- PostgreSQL migration of the same number drops it to keep the updates
-- HOT; here it only saves the index writes.
DROP INDEX IF EXISTS node_liveness_last_seen_idx;
