-- Usage reports are pruned by period once billed and past --usage-retention
-- (store.PruneUsage): without this index each prune would read the table.
CREATE INDEX contract_usage_period_start_idx ON contract_usage (period_start);
