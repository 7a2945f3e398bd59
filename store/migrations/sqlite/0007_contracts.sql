-- Contracts and billing (docs/contracts.md), SQLite dialect: times are INTEGER unix microseconds, amounts INTEGER µTFT.

-- Farm prices per hour, with history: a contract pays the latest row set
-- before max(its creation, the period's start - the notice period).
CREATE TABLE farm_pricing (
    farm_id INTEGER      NOT NULL CONSTRAINT farm_pricing_farm_id_fkey REFERENCES farms (farm_id),
    set_at  INTEGER NOT NULL,
    cru     INTEGER      NOT NULL CHECK (cru >= 0),
    mru     INTEGER      NOT NULL CHECK (mru >= 0),
    sru     INTEGER      NOT NULL CHECK (sru >= 0),
    hru     INTEGER      NOT NULL CHECK (hru >= 0),
    ipv4    INTEGER      NOT NULL CHECK (ipv4 >= 0),
    PRIMARY KEY (farm_id, set_at)
);

-- A farm's uptime promise.
CREATE TABLE farm_sla (
    farm_id          INTEGER      PRIMARY KEY CONSTRAINT farm_sla_farm_id_fkey REFERENCES farms (farm_id),
    uptime_percent   INTEGER     NOT NULL CHECK (uptime_percent BETWEEN 0 AND 100),
    discount_percent INTEGER     NOT NULL CHECK (discount_percent BETWEEN 0 AND 100),
    updated_at       INTEGER NOT NULL
);

CREATE TABLE contracts (
    contract_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    twin_id         INTEGER      NOT NULL CONSTRAINT contracts_twin_id_fkey REFERENCES accounts (twin_id),
    node_id         INTEGER      NOT NULL CONSTRAINT contracts_node_id_fkey REFERENCES nodes (node_id),
    type            TEXT        NOT NULL CHECK (type IN ('node', 'rent')),
    deployment_hash TEXT        NOT NULL DEFAULT '',
    cru             INTEGER      NOT NULL DEFAULT 0 CHECK (cru >= 0),
    mru             INTEGER      NOT NULL DEFAULT 0 CHECK (mru >= 0),
    sru             INTEGER      NOT NULL DEFAULT 0 CHECK (sru >= 0),
    hru             INTEGER      NOT NULL DEFAULT 0 CHECK (hru >= 0),
    ipv4            INTEGER      NOT NULL DEFAULT 0 CHECK (ipv4 >= 0),
    state           TEXT        NOT NULL CHECK (state IN ('active', 'grace', 'deleted')),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    grace_since     INTEGER,
    deleted_at      INTEGER,
    deleted_reason  TEXT        NOT NULL DEFAULT '',
    -- The start of the next period to bill: advanced in the transaction
    -- that writes the period's bill, so a period is billed once.
    billed_until    INTEGER NOT NULL
);
CREATE INDEX contracts_twin_id_idx ON contracts (twin_id, contract_id);
CREATE INDEX contracts_node_id_idx ON contracts (node_id, contract_id);
-- At most one live rent contract per node.
CREATE UNIQUE INDEX contracts_rent_key ON contracts (node_id) WHERE type = 'rent' AND state <> 'deleted';
CREATE INDEX contracts_grace_idx ON contracts (grace_since) WHERE state = 'grace';

-- What a node reported each contract used in a period.
CREATE TABLE contract_usage (
    contract_id  INTEGER      NOT NULL CONSTRAINT contract_usage_contract_id_fkey REFERENCES contracts (contract_id),
    period_start INTEGER NOT NULL,
    cru          INTEGER      NOT NULL CHECK (cru >= 0),
    mru          INTEGER      NOT NULL CHECK (mru >= 0),
    sru          INTEGER      NOT NULL CHECK (sru >= 0),
    hru          INTEGER      NOT NULL CHECK (hru >= 0),
    ipv4         INTEGER      NOT NULL CHECK (ipv4 >= 0),
    reported_at  INTEGER NOT NULL,
    PRIMARY KEY (contract_id, period_start)
);

-- The double-entry ledger: the lines of one bill or credit sum to zero.
-- account_kind is 'twin', 'farm' or 'external' (account_id 0).
CREATE TABLE ledger (
    line_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    period_start INTEGER,
    contract_id  INTEGER,
    account_kind TEXT        NOT NULL CHECK (account_kind IN ('twin', 'farm', 'external')),
    account_id   INTEGER      NOT NULL,
    amount       INTEGER      NOT NULL,
    kind         TEXT        NOT NULL,
    reference    TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX ledger_account_idx ON ledger (account_kind, account_id, line_id);
-- Exactly once per contract, period, kind and account.
CREATE UNIQUE INDEX ledger_bill_key ON ledger (contract_id, period_start, kind, account_kind) WHERE contract_id IS NOT NULL;
-- A credit's reference is used once per twin.
CREATE UNIQUE INDEX ledger_credit_key ON ledger (account_id, reference) WHERE kind = 'credit' AND account_kind = 'twin';

-- Each account's balance: the sum of its ledger lines, kept in the
-- transaction that writes them.
CREATE TABLE balances (
    account_kind TEXT   NOT NULL,
    account_id   INTEGER NOT NULL,
    balance      INTEGER NOT NULL,
    PRIMARY KEY (account_kind, account_id)
);
