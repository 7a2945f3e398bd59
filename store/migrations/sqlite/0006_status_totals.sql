-- The capacity each node offers (its latest status report's total) in
-- columns of their own beside the free figures, so that the grid's
-- totals (the explorer's) are one scan of node_status's columns rather
-- than a parse of every report's JSON; filled from the reports already
-- stored.
ALTER TABLE node_status ADD COLUMN total_cru  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE node_status ADD COLUMN total_mru  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE node_status ADD COLUMN total_sru  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE node_status ADD COLUMN total_hru  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE node_status ADD COLUMN total_ipv4 INTEGER NOT NULL DEFAULT 0;

UPDATE node_status SET
    total_cru  = COALESCE(json_extract(report, '$.total.cru'), 0),
    total_mru  = COALESCE(json_extract(report, '$.total.mru'), 0),
    total_sru  = COALESCE(json_extract(report, '$.total.sru'), 0),
    total_hru  = COALESCE(json_extract(report, '$.total.hru'), 0),
    total_ipv4 = COALESCE(json_extract(report, '$.total.ipv4'), 0);
