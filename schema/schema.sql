-- SMIMEA certificate store, schema version 7 (the full schema of a new store).
-- An older store is brought up to date by migrations/NNNN_<what>.sql, each one transaction
-- that ends by setting PRAGMA user_version. smimea-ctl init applies them; see README.
--
-- Everything a DNS query needs is computed when a certificate is added: the owner hash
-- (first 28 octets of SHA2-256 of the local-part, RFC 8162 section 3) and the association
-- data. A lookup is one read of idx_records_zone_owner.

CREATE TABLE zones (
  id              INTEGER PRIMARY KEY,
  name            TEXT    NOT NULL UNIQUE,            -- lower-case A-labels, no trailing dot
  mode            TEXT    NOT NULL DEFAULT 'authoritative'
                          CHECK (mode IN ('authoritative', 'overlay')),
  serial          INTEGER NOT NULL CHECK (serial BETWEEN 0 AND 4294967295),
  notified_serial INTEGER,                            -- NULL: never notified
  created_at      INTEGER NOT NULL,                   -- seconds since the epoch
  updated_at      INTEGER NOT NULL,
  -- Version 3. master: pdns NOTIFYs secondaries when the serial moves; native: it does not.
  kind            TEXT    NOT NULL DEFAULT 'master' CHECK (kind IN ('master', 'native')),
  -- Version 4. 0: local-parts are compared ignoring ASCII letter case (Alice@ and alice@ are
  -- one mailbox, stored under its first spelling, published at the exact and the lower-cased
  -- owner names); 1: compared exactly, no lower-cased owner name.
  case_sensitive  INTEGER NOT NULL DEFAULT 0 CHECK (case_sensitive IN (0, 1)),
  -- Version 6. When the serial last moved: a certificate that expires after that changes what
  -- a withdrawing server serves (expired-certificates: withdraw), so the serial moves again.
  serial_changed_at INTEGER NOT NULL DEFAULT 0,
  -- Version 6. The zone's unique id in the catalog zone (RFC 9432 section 4.1: the label of
  -- its member PTR, <catalog_id>.zones.<catalog>): 16 lower-case hex digits, random, made when
  -- the zone is added, so a zone removed and added again is a new member.
  catalog_id      TEXT    NOT NULL DEFAULT ''
);

-- Version 6. The catalog zone (`catalog:` in the configuration): one row. Its serial moves,
-- like a zone's, when an authoritative zone is added or removed (Store::commit), whether or
-- not a catalog is configured, so that one turned on later starts from the store's state.
CREATE TABLE catalog (
  id              INTEGER PRIMARY KEY CHECK (id = 0),
  serial          INTEGER NOT NULL CHECK (serial BETWEEN 0 AND 4294967295),
  notified_serial INTEGER                             -- NULL: never notified
);
INSERT INTO catalog (id, serial) VALUES (0, CAST(strftime('%s', 'now') AS INTEGER));

-- Version 7. The zone-table version: a random value, replaced by these triggers whenever a row
-- of zones or catalog changes, in the transaction that changes it. Processes that answer from
-- the store share one zone table per version (backend/include/smimea/zone_table.h). Random
-- rather than counted, so that a store restored from a backup, or made again at the same
-- path, never shows a version that meant other contents.
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

CREATE TABLE certificates (
  id          INTEGER PRIMARY KEY,
  zone_id     INTEGER NOT NULL REFERENCES zones (id),
  address     TEXT    NOT NULL,                       -- as printed: local@a-label-domain;
                                                      -- one spelling per mailbox (version 4)
  domain      TEXT    NOT NULL,                       -- mail domain, A-labels
  fingerprint BLOB    NOT NULL CHECK (length(fingerprint) = 32),  -- SHA2-256 of der
  der         BLOB    NOT NULL,
  subject     TEXT    NOT NULL,
  issuer      TEXT    NOT NULL,
  serial      TEXT    NOT NULL,                       -- hex
  not_before  INTEGER NOT NULL,
  not_after   INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  -- Version 5: who made the last change (audit): "cli:<user>", "token:<name>", '' if older.
  changed_by  TEXT    NOT NULL DEFAULT '',
  UNIQUE (address, fingerprint)
);
CREATE INDEX idx_certificates_zone ON certificates (zone_id);
CREATE INDEX idx_certificates_address ON certificates (address COLLATE NOCASE);
CREATE INDEX idx_certificates_fingerprint ON certificates (fingerprint);  -- version 5
CREATE INDEX idx_certificates_not_after ON certificates (not_after);      -- version 6

CREATE TABLE records (
  id             INTEGER PRIMARY KEY,
  certificate_id INTEGER NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
  zone_id        INTEGER NOT NULL REFERENCES zones (id),
  owner          BLOB    NOT NULL CHECK (length(owner) = 28),
  usage          INTEGER NOT NULL CHECK (usage BETWEEN 0 AND 3),
  selector       INTEGER NOT NULL CHECK (selector BETWEEN 0 AND 1),
  matching_type  INTEGER NOT NULL CHECK (matching_type BETWEEN 0 AND 2),
  ttl            INTEGER NOT NULL CHECK (ttl BETWEEN 0 AND 2147483647),  -- one per owner
  data           BLOB    NOT NULL,
  -- Version 6: the certificate's not_after, so that a lookup that leaves out expired
  -- certificates' records (expired-certificates: withdraw) is still one indexed read.
  not_after      INTEGER NOT NULL DEFAULT 9223372036854775807,
  UNIQUE (certificate_id, owner, usage, selector, matching_type)
);
-- The query path: WHERE zone_id = ? AND owner = ?; also zone listings in owner order.
CREATE INDEX idx_records_zone_owner ON records (zone_id, owner);
CREATE INDEX idx_records_certificate ON records (certificate_id);

-- DNSSEC (version 2): keys and domain metadata for zones our backend signs. Keys and metadata
-- go with their zone: removing the zone removes them.
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

-- Zone transfer (version 3): TSIG keys for pdnsutil generate-tsig-key / import-tsig-key and the
-- TSIG-ALLOW-AXFR metadata. Names and algorithms lower-case, without the trailing dot. Secret:
-- base64, as pdns hands it over; protect the store file (README, "TSIG").
CREATE TABLE tsig_keys (
  id        INTEGER PRIMARY KEY,
  name      TEXT    NOT NULL UNIQUE,
  algorithm TEXT    NOT NULL,
  secret    TEXT    NOT NULL
);

-- API tokens (version 5).
-- A token's secret is never stored: only its SHA2-256 (the secret is 256 random bits, so a
-- fast hash is enough; a lookup by hash finds the token). Scopes: the zones and the mailboxes
-- it may act on (none of either: every zone, for an admin token only).
CREATE TABLE tokens (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL UNIQUE,
  secret_sha256 BLOB    NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
  read_only     INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1)),
  admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
  expires_at    INTEGER,                              -- seconds since the epoch; NULL: never
  created_at    INTEGER NOT NULL,
  created_by    TEXT    NOT NULL
);

CREATE TABLE token_scopes (
  token_id INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
  kind     TEXT    NOT NULL CHECK (kind IN ('zone', 'address', 'network')),
  value    TEXT    NOT NULL,  -- a zone name, a mailbox (as printed), a network (CIDR)
  PRIMARY KEY (token_id, kind, value)
);

PRAGMA user_version = 7;
