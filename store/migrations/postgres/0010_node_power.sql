-- A node's power target, set by its farmer: "on" or "off". A node without
-- a row is "on". The node follows it (powerd); its farm peers wake it
-- when it goes back to "on".
CREATE TABLE node_power (
    node_id      BIGINT PRIMARY KEY CONSTRAINT node_power_node_id_fkey REFERENCES nodes (node_id),
    power_target TEXT    NOT NULL CHECK (power_target IN ('on', 'off')),
    set_by       BIGINT NOT NULL,
    set_at       TIMESTAMPTZ NOT NULL
);
