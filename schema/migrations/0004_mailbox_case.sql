-- Version 4: one mailbox per case-folded address, one TTL per RRset.
--
-- Mailbox case (README, "Mailbox case"). By default a zone treats the letter case of
-- local-parts as mail systems do: Alice@ and alice@ are one mailbox, whose records go to the
-- owner names of its exact and its lower-cased local-part. Before version 4 the store kept
-- them as two mailboxes while both published at the lower-cased owner name, so one
-- mailbox's certificate could answer for the other. Every zone becomes case-insensitive
-- (the default); a case-sensitive zone publishes no lower-cased variant and matches exactly.
ALTER TABLE zones ADD COLUMN case_sensitive INTEGER NOT NULL DEFAULT 0
  CHECK (case_sensitive IN (0, 1));

-- The certificates of one mailbox stored under several spellings join the first spelling
-- (the oldest row). A certificate stored under two spellings keeps one row: the records of
-- the newer row go to the older (unless it has the same record already), then it goes.
CREATE TEMP TABLE mailbox_merge AS
  SELECT c.id AS id,
         (SELECT k.id FROM certificates k
           WHERE k.address = c.address COLLATE NOCASE ORDER BY k.id LIMIT 1) AS keeper
    FROM certificates c;
DELETE FROM mailbox_merge WHERE id = keeper;

CREATE TEMP TABLE duplicate_rows AS
  SELECT c.id AS id,
         (SELECT d.id FROM certificates d
           WHERE d.address = c.address COLLATE NOCASE AND d.fingerprint = c.fingerprint
           ORDER BY d.id LIMIT 1) AS keep
    FROM certificates c;
DELETE FROM duplicate_rows WHERE id = keep;

UPDATE OR IGNORE records SET certificate_id =
    (SELECT keep FROM duplicate_rows WHERE duplicate_rows.id = records.certificate_id)
  WHERE certificate_id IN (SELECT id FROM duplicate_rows);
DELETE FROM records WHERE certificate_id IN (SELECT id FROM duplicate_rows);
DELETE FROM certificates WHERE id IN (SELECT id FROM duplicate_rows);

UPDATE certificates SET address =
    (SELECT k.address FROM mailbox_merge m JOIN certificates k ON k.id = m.keeper
      WHERE m.id = certificates.id)
  WHERE id IN (SELECT id FROM mailbox_merge);

DROP TABLE mailbox_merge;
DROP TABLE duplicate_rows;

-- One TTL per RRset (RFC 2181 section 5.2): the most recently added record's TTL wins. The
-- serial of a zone whose answers change moves, as smimea-ctl moves it, so secondaries follow.
CREATE TEMP TABLE ttl_zones AS
  SELECT DISTINCT zone_id FROM records GROUP BY zone_id, owner HAVING count(DISTINCT ttl) > 1;
UPDATE records SET ttl =
    (SELECT r.ttl FROM records r WHERE r.zone_id = records.zone_id AND r.owner = records.owner
      ORDER BY r.id DESC LIMIT 1)
  WHERE ttl != (SELECT r.ttl FROM records r
                 WHERE r.zone_id = records.zone_id AND r.owner = records.owner
                 ORDER BY r.id DESC LIMIT 1);

UPDATE zones SET
    serial = CASE WHEN CAST(strftime('%s', 'now') AS INTEGER) > serial
                   AND CAST(strftime('%s', 'now') AS INTEGER) <= 4294967295
                  THEN CAST(strftime('%s', 'now') AS INTEGER) ELSE (serial + 1) % 4294967296 END,
    updated_at = CAST(strftime('%s', 'now') AS INTEGER)
  WHERE id IN (SELECT zone_id FROM ttl_zones);
DROP TABLE ttl_zones;

PRAGMA user_version = 4;
