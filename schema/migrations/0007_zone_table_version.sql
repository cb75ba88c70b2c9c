-- Version 7: the zone-table version, which every process that answers from the store reads to
-- tell whether the zone table it shares among its backend instances is still the store's
-- (backend/include/smimea/zone_table.h). See schema.sql.
CREATE TABLE zone_table_version (
  id      INTEGER PRIMARY KEY CHECK (id = 0),
  version INTEGER NOT NULL
);
INSERT INTO zone_table_version (id, version) VALUES (0, random());
CREATE TRIGGER zones_insert_moves_version AFTER INSERT ON zones
BEGIN UPDATE zone_table_version SET version = random(); END;
CREATE TRIGGER zones_update_moves_version AFTER UPDATE ON zones
BEGIN UPDATE zone_table_version SET version = random(); END;
CREATE TRIGGER zones_delete_moves_version AFTER DELETE ON zones
BEGIN UPDATE zone_table_version SET version = random(); END;
CREATE TRIGGER catalog_update_moves_version AFTER UPDATE ON catalog
BEGIN UPDATE zone_table_version SET version = random(); END;

PRAGMA user_version = 7;
