-- The explorer's node list filters on country, ZOS version and approval,
-- in node_id order, a page at a time: an index on each, so that a value
-- few nodes have (or none) is not found by reading the whole table.
CREATE INDEX nodes_country_node_id_idx ON nodes (country, node_id);
CREATE INDEX nodes_zos_version_node_id_idx ON nodes (zos_version, node_id);
CREATE INDEX nodes_approved_node_id_idx ON nodes (approved, node_id);
