-- grid4 registrar schema, SQLite dialect. Times are INTEGER unix
-- microseconds (UTC); booleans are 0/1; lists are JSON text.

CREATE TABLE accounts (
    twin_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    public_key  TEXT    NOT NULL,
    relays      TEXT    NOT NULL DEFAULT '[]',
    rmb_enc_key TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CONSTRAINT accounts_public_key_key UNIQUE (public_key)
);

CREATE TABLE farms (
    farm_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    farm_name       TEXT    NOT NULL,
    twin_id         INTEGER NOT NULL CONSTRAINT farms_twin_id_fkey REFERENCES accounts (twin_id),
    stellar_address TEXT    NOT NULL DEFAULT '',
    dedicated       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Farm names are unique case-insensitively (names are ASCII).
CREATE UNIQUE INDEX farms_farm_name_key ON farms (lower(farm_name));
CREATE INDEX farms_twin_id_idx ON farms (twin_id);

CREATE TABLE nodes (
    node_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    farm_id       INTEGER NOT NULL CONSTRAINT nodes_farm_id_fkey REFERENCES farms (farm_id),
    twin_id       INTEGER NOT NULL CONSTRAINT nodes_twin_id_fkey REFERENCES accounts (twin_id),
    country       TEXT    NOT NULL DEFAULT '',
    city          TEXT    NOT NULL DEFAULT '',
    longitude     TEXT    NOT NULL DEFAULT '',
    latitude      TEXT    NOT NULL DEFAULT '',
    hru           INTEGER NOT NULL DEFAULT 0,
    sru           INTEGER NOT NULL DEFAULT 0,
    cru           INTEGER NOT NULL DEFAULT 0,
    mru           INTEGER NOT NULL DEFAULT 0,
    interfaces    TEXT    NOT NULL DEFAULT '[]',
    secure_boot   INTEGER NOT NULL DEFAULT 0,
    virtualized   INTEGER NOT NULL DEFAULT 0,
    serial_number TEXT    NOT NULL DEFAULT '',
    zos_version   TEXT    NOT NULL DEFAULT '',
    approved      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- One node per twin.
    CONSTRAINT nodes_twin_id_key UNIQUE (twin_id)
);
-- GET /nodes?farm_id=F pages through a farm's nodes in node_id order.
CREATE INDEX nodes_farm_id_node_id_idx ON nodes (farm_id, node_id);

-- Liveness: the current uptime session of each node that ever reported,
-- apart from the node's metadata so that a report is one small write.
CREATE TABLE node_liveness (
    node_id   INTEGER PRIMARY KEY CONSTRAINT node_liveness_node_id_fkey REFERENCES nodes (node_id),
    last_seen INTEGER NOT NULL,
    boot_time INTEGER NOT NULL,
    uptime    INTEGER NOT NULL,
    reports   INTEGER NOT NULL
);
CREATE INDEX node_liveness_last_seen_idx ON node_liveness (last_seen);

-- Closed uptime sessions: one row per reboot, pruned by last_report.
CREATE TABLE uptime_sessions (
    node_id     INTEGER NOT NULL CONSTRAINT uptime_sessions_node_id_fkey REFERENCES nodes (node_id),
    boot_time   INTEGER NOT NULL,
    last_report INTEGER NOT NULL,
    uptime      INTEGER NOT NULL,
    reports     INTEGER NOT NULL,
    PRIMARY KEY (node_id, boot_time)
) WITHOUT ROWID;
CREATE INDEX uptime_sessions_last_report_idx ON uptime_sessions (last_report);

-- ZOS version history; the row with the highest serial is the current one.
CREATE TABLE zos_versions (
    serial          INTEGER PRIMARY KEY,
    version         TEXT    NOT NULL,
    safe_to_upgrade INTEGER NOT NULL,
    test_farms      TEXT    NOT NULL DEFAULT '[]',
    set_by          INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    CONSTRAINT zos_versions_serial_check CHECK (serial > 0)
);

-- Replay protection for signed requests.
CREATE TABLE nonces (
    key_id     TEXT    NOT NULL,
    nonce      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_expires_at_idx ON nonces (expires_at);
