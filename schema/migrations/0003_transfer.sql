-- Version 3: zone transfer to secondaries. Each zone has a kind, as PowerDNS's domaininfo
-- reports it: 'master' zones are announced to secondaries with NOTIFY when their serial moves
-- (pdns primary=yes), 'native' zones are not (they may still be transferred). TSIG keys live
-- in the store for pdnsutil generate-tsig-key / import-tsig-key and TSIG-ALLOW-AXFR.

ALTER TABLE zones ADD COLUMN kind TEXT NOT NULL DEFAULT 'master'
  CHECK (kind IN ('master', 'native'));

-- Names and algorithms lower-case, without the trailing dot. Secret: base64, as pdns hands it
-- over. Protect the store file (README, "TSIG").
CREATE TABLE tsig_keys (
  id        INTEGER PRIMARY KEY,
  name      TEXT    NOT NULL UNIQUE,
  algorithm TEXT    NOT NULL,
  secret    TEXT    NOT NULL
);

-- cert remove and cert list look addresses up ignoring case: without this index that is a
-- scan of every certificate (seconds at a million).
CREATE INDEX idx_certificates_address ON certificates (address COLLATE NOCASE);

PRAGMA user_version = 3;
