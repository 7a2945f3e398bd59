-- Billing writes less: the exactly-once key covers the twin's line of each
-- bill alone (the farm's line is written in the same transaction, so a
-- second bill fails on the twin's line). SQLite has no fillfactor.
DROP INDEX ledger_bill_key;
CREATE UNIQUE INDEX ledger_bill_key ON ledger (contract_id, period_start, kind)
    WHERE contract_id IS NOT NULL AND account_kind = 'twin';
