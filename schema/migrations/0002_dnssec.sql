-- Version 2: DNSSEC keys and domain metadata, for PowerDNS's key and metadata calls when our
-- backend signs its own zones (pdnsutil secure-zone, set-nsec3, add-zone-key, ...).
-- Keys and metadata go with their zone: removing the zone removes them.

-- Private keys in PowerDNS's "Private-key-format: v1.2" text, exactly as pdns hands them
-- over. Secret: protect the store file (README, "Protecting the store").
CREATE TABLE domain_keys (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: pdns caches keys by id
  zone_id   INTEGER NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
  flags     INTEGER NOT NULL CHECK (flags BETWEEN 0 AND 65535),  -- 257 KSK/CSK, 256 ZSK
  active    INTEGER NOT NULL CHECK (active IN (0, 1)),
  published INTEGER NOT NULL CHECK (published IN (0, 1)),
  content   TEXT    NOT NULL
);
CREATE INDEX idx_domain_keys_zone ON domain_keys (zone_id);

-- One row per value; a kind (NSEC3PARAM, NSEC3NARROW, SOA-EDIT, ...) may have several.
CREATE TABLE domain_metadata (
  id      INTEGER PRIMARY KEY,
  zone_id INTEGER NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
  kind    TEXT    NOT NULL,
  content TEXT    NOT NULL
);
CREATE INDEX idx_domain_metadata_zone_kind ON domain_metadata (zone_id, kind);

PRAGMA user_version = 2;
