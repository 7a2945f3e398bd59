-- Every signed request inserts a nonce: the index on expires_at cost a
-- second index entry per request for the sake of the prune that runs once
-- a minute; the prune now reads the table, which holds only the nonces of
-- the last few minutes. (SQLite compares text byte for byte already.)
DROP INDEX IF EXISTS nonces_expires_at_idx;
