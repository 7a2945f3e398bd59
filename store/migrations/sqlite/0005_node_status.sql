-- Node status reports (POST /nodes/{node_id}/status): the latest one of
-- each node, with the figures GET /nodes filters on in columns of their
-- own and the whole report as JSON text (stored and served, never
-- queried into). The filters probe this table by node_id.
CREATE TABLE node_status (
    node_id     INTEGER PRIMARY KEY CONSTRAINT node_status_node_id_fkey REFERENCES nodes (node_id),
    reported_at INTEGER NOT NULL,
    healthy     INTEGER NOT NULL,
    free_cru    INTEGER NOT NULL,
    free_mru    INTEGER NOT NULL,
    free_sru    INTEGER NOT NULL,
    free_hru    INTEGER NOT NULL,
    free_ipv4   INTEGER NOT NULL,
    reports     INTEGER NOT NULL,
    report      TEXT    NOT NULL
);

-- The recent reports of each node, without their checks and modules: a
-- ring of store.StatusHistoryLen slots per node (slot = report count
-- modulo the length), overwritten in place: at most that many rows per
-- node, no pruning.
CREATE TABLE node_status_history (
    node_id     INTEGER NOT NULL CONSTRAINT node_status_history_node_id_fkey REFERENCES nodes (node_id),
    slot        INTEGER NOT NULL,
    reported_at INTEGER NOT NULL,
    report      TEXT    NOT NULL,
    PRIMARY KEY (node_id, slot)
) WITHOUT ROWID;
