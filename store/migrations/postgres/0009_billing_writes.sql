-- Billing writes less (docs/benchmarks.md, contracts): each billed period
-- moves a contract's billed_until, so leave room on its pages for the new
-- row versions (HOT updates: no index changes); and the exactly-once key
-- covers the twin's line of each bill alone (the farm's line is written in
-- the same statement, so a second bill fails on the twin's line).
ALTER TABLE contracts SET (fillfactor = 50);
DROP INDEX ledger_bill_key;
CREATE UNIQUE INDEX ledger_bill_key ON ledger (contract_id, period_start, kind)
    WHERE contract_id IS NOT NULL AND account_kind = 'twin';
