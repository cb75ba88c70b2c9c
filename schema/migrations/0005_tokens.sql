-- Version 5: API tokens, and who made each certificate's last change (audit).
--
-- changed_by: "cli:<user>" for smimea-ctl, "token:<name>" for the HTTP API; '' for rows from
-- before version 5.
ALTER TABLE certificates ADD COLUMN changed_by TEXT NOT NULL DEFAULT '';

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

-- DELETE /api/v1/certificates/{sha256}: a certificate by its fingerprint alone.
CREATE INDEX idx_certificates_fingerprint ON certificates (fingerprint);

PRAGMA user_version = 5;
