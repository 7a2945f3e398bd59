-- The capacity each node offers (its latest status report's total) in
-- columns of their own beside the free figures, so that the grid's
-- totals (the explorer's) are one scan of node_status's columns rather
-- than a parse of every report's JSON. Constant defaults: no table
-- rewrite for the columns; the one UPDATE fills them from the reports
-- already stored.
ALTER TABLE node_status
    ADD COLUMN total_cru  BIGINT NOT NULL DEFAULT 0 CHECK (total_cru >= 0),
    ADD COLUMN total_mru  BIGINT NOT NULL DEFAULT 0 CHECK (total_mru >= 0),
    ADD COLUMN total_sru  BIGINT NOT NULL DEFAULT 0 CHECK (total_sru >= 0),
    ADD COLUMN total_hru  BIGINT NOT NULL DEFAULT 0 CHECK (total_hru >= 0),
    ADD COLUMN total_ipv4 BIGINT NOT NULL DEFAULT 0 CHECK (total_ipv4 >= 0);

UPDATE node_status SET
    total_cru  = COALESCE((report::jsonb #>> '{total,cru}')::bigint, 0),
    total_mru  = COALESCE((report::jsonb #>> '{total,mru}')::bigint, 0),
    total_sru  = COALESCE((report::jsonb #>> '{total,sru}')::bigint, 0),
    total_hru  = COALESCE((report::jsonb #>> '{total,hru}')::bigint, 0),
    total_ipv4 = COALESCE((report::jsonb #>> '{total,ipv4}')::bigint, 0);
