-- Version 6: expired certificates may be withdrawn (expired-certificates: withdraw); the
-- catalog zone (catalog: NAME) has its members' ids and its serial.
--
-- records.not_after: the notAfter of the record's certificate, copied so that a lookup stays
-- one read of idx_records_zone_owner when it leaves out the records of expired certificates.
ALTER TABLE records ADD COLUMN not_after INTEGER NOT NULL DEFAULT 9223372036854775807;
UPDATE records SET not_after = (SELECT c.not_after FROM certificates c
                                WHERE c.id = records.certificate_id);

-- zones.serial_changed_at: when the serial last moved. A certificate that expires after that
-- changes what a withdrawing server serves, so the serial must move again (Store::
-- bump_expired_serials).
ALTER TABLE zones ADD COLUMN serial_changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE zones SET serial_changed_at = updated_at;

-- The certificates that expire next, and those that expired since a moment.
CREATE INDEX idx_certificates_not_after ON certificates (not_after);

-- zones.catalog_id: the zone's unique id in the catalog zone (RFC 9432 section 4.1), random,
-- made when the zone is added; and the catalog's own serial (see schema.sql).
ALTER TABLE zones ADD COLUMN catalog_id TEXT NOT NULL DEFAULT '';
UPDATE zones SET catalog_id = lower(hex(randomblob(8)));
CREATE TABLE catalog (
  id              INTEGER PRIMARY KEY CHECK (id = 0),
  serial          INTEGER NOT NULL CHECK (serial BETWEEN 0 AND 4294967295),
  notified_serial INTEGER
);
INSERT INTO catalog (id, serial) VALUES (0, CAST(strftime('%s', 'now') AS INTEGER));

PRAGMA user_version = 6;
