-- Node status reports (POST /nodes/{node_id}/status): the latest one of
-- each node, rewritten by every report like node_liveness, with the
-- figures GET /nodes filters on in columns of their own and the whole
-- report as JSON text (never queried into: stored and served). No index
-- covers a column a report changes, so the rewrites stay HOT; the filters
-- probe this table by node_id, as the online filters probe node_liveness.
CREATE TABLE node_status (
    node_id     BIGINT      PRIMARY KEY CONSTRAINT node_status_node_id_fkey REFERENCES nodes (node_id),
    reported_at TIMESTAMPTZ NOT NULL,
    healthy     BOOLEAN     NOT NULL,
    free_cru    BIGINT      NOT NULL CHECK (free_cru >= 0),
    free_mru    BIGINT      NOT NULL CHECK (free_mru >= 0),
    free_sru    BIGINT      NOT NULL CHECK (free_sru >= 0),
    free_hru    BIGINT      NOT NULL CHECK (free_hru >= 0),
    free_ipv4   BIGINT      NOT NULL CHECK (free_ipv4 >= 0),
    reports     BIGINT      NOT NULL CHECK (reports >= 0),
    report      TEXT        NOT NULL
) WITH (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);

-- The recent reports of each node, without their checks and modules: a
-- ring of store.StatusHistoryLen slots per node (slot = report count
-- modulo the length), overwritten in place, so the table holds at most
-- that many rows per node and needs no pruning.
CREATE TABLE node_status_history (
    node_id     BIGINT      NOT NULL CONSTRAINT node_status_history_node_id_fkey REFERENCES nodes (node_id),
    slot        INTEGER     NOT NULL CHECK (slot >= 0),
    reported_at TIMESTAMPTZ NOT NULL,
    report      TEXT        NOT NULL,
    PRIMARY KEY (node_id, slot)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
