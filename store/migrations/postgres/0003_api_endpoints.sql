-- The URLs of a node's zos-api-light, as a JSON array of strings, so that
-- users can find a node's API from its id. Nodes registered before have
-- none until their next update. A constant default: no table rewrite.
ALTER TABLE nodes ADD COLUMN api_endpoints JSONB NOT NULL DEFAULT '[]';
