#include "smimea/key_store.h"

#include <sys/stat.h>

#include <ctime>

#include "smimea/store.h"
#include "sqlite_util.h"

namespace smimea {

using detail::DbPtr;
using detail::read_user_version;
using detail::sqlite_error;
using detail::Statement;

namespace {

// pdns names zones "Example.COM." (case as typed, trailing dot); the store keeps "example.com".
std::string normalize_zone(std::string_view zone) {
  if (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
  std::string out(zone);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
  return out;
}

}  // namespace

// The SQLite implementation of KeyStore.
class SqliteKeyStore final : public KeyStore {
 public:
  SqliteKeyStore(std::string path, KeyStoreOptions options)
      : path_(std::move(path)), options_(options) {}
  ~SqliteKeyStore() override;

  Result<std::vector<DomainKey>> get_domain_keys(std::string_view zone) override;
  Result<std::int64_t> add_domain_key(std::string_view zone, const DomainKey& key) override;
  Status remove_domain_key(std::string_view zone, std::int64_t id) override;
  Status set_key_active(std::string_view zone, std::int64_t id, bool active) override;
  Status set_key_published(std::string_view zone, std::int64_t id, bool published) override;
  Result<DomainMetadata> get_all_domain_metadata(std::string_view zone) override;
  Result<std::vector<std::string>> get_domain_metadata(std::string_view zone,
                                                       std::string_view kind) override;
  Status set_domain_metadata(std::string_view zone, std::string_view kind,
                             const std::vector<std::string>& values) override;
  Status set_notified(std::int64_t zone_id, std::uint32_t serial) override;
  Result<std::optional<std::int64_t>> move_serials_of_expired(std::int64_t now) override;
  Result<TsigKey> get_tsig_key(std::string_view name) override;
  Result<std::vector<TsigKey>> get_tsig_keys() override;
  Status set_tsig_key(const TsigKey& key) override;
  Status delete_tsig_key(std::string_view name) override;
  Status begin() override;
  Status commit() override;
  Status rollback() override;
  bool in_transaction() const override { return in_transaction_; }
  Result<OwnerNeighbours> owner_neighbours(std::int64_t zone_id, const OwnerHash& bound) override;
  Result<std::optional<OwnerHash>> first_owner(std::int64_t zone_id) override;

 private:
  struct Impl;
  Status open();
  Result<std::int64_t> find_zone(std::string_view zone);
  Status write_begin();
  Status write_end(Status status);
  Status bump_serial(std::int64_t zone_id);
  // The smallest records.not_after served now (see detail::served_since).
  std::int64_t served_since() const {
    return options_.withdraw_expired ? static_cast<std::int64_t>(std::time(nullptr)) : INT64_MIN;
  }

  std::string path_;
  KeyStoreOptions options_;
  std::unique_ptr<Impl> impl_;
  bool in_transaction_ = false;
  std::set<std::int64_t> touched_zones_;  // zones written in the open transaction
};

struct SqliteKeyStore::Impl {
  DbPtr db;  // declared first: the statements below are finalised before it closes
  Statement find_zone, get_keys, add_key, remove_key, set_active, set_published, get_all_meta,
      get_meta, delete_meta, insert_meta, bump_serial, neighbours, first_owner, set_notified,
      get_tsig, get_tsigs, set_tsig, delete_tsig, expired_zones, move_expired, next_expiry;

  Status exec(const char* sql, std::string_view what) {
    if (sqlite3_exec(db.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return sqlite_error(db.get(), what);
    }
    return Status();
  }
  Status error(std::string_view what) const { return sqlite_error(db.get(), what); }
};

std::unique_ptr<KeyStore> KeyStore::create(std::string path, KeyStoreOptions options) {
  return std::make_unique<SqliteKeyStore>(std::move(path), options);
}

SqliteKeyStore::~SqliteKeyStore() {
  if (impl_ && in_transaction_) impl_->exec("ROLLBACK", "rollback").ok();
}

Status SqliteKeyStore::open() {
  if (impl_) return Status();
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return Status::store_error(path_, "store not found (create it with smimea-ctl init)");
  }
  if (!S_ISREG(st.st_mode)) return Status::store_error(path_, "not a regular file");
  // READWRITE opens read-only when the file is write-protected: reads still work.
  auto db = detail::open_db(path_, SQLITE_OPEN_READWRITE);
  if (!db.ok()) return db.status();
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db).value();
  sqlite3* raw = impl->db.get();
  sqlite3_busy_timeout(raw, static_cast<int>(options_.busy_timeout_ms));
  auto version = read_user_version(raw, path_);
  if (!version.ok()) return version.status();
  SMIMEA_RETURN_IF_ERROR(detail::check_schema_version(path_, *version, kSchemaVersion));
  SMIMEA_RETURN_IF_ERROR(impl->exec("PRAGMA foreign_keys=ON", path_ + ": configure connection"));
  impl_ = std::move(impl);
  return Status();
}

Result<std::int64_t> SqliteKeyStore::find_zone(std::string_view zone) {
  SMIMEA_RETURN_IF_ERROR(open());
  const std::string name = normalize_zone(zone);
  Statement& s = impl_->find_zone;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), "SELECT id, mode FROM zones WHERE name = ?1"));
  s.bind_text(1, name);
  const int rc = s.step();
  const std::int64_t id = rc == SQLITE_ROW ? s.int64(0) : -1;
  const bool overlay = rc == SQLITE_ROW && s.text(1) == "overlay";
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    Status error = impl_->error("find zone " + name);
    s.reset();
    return error;
  }
  s.reset();  // ends the read: it must not pin a snapshot
  if (rc == SQLITE_DONE) return Status::not_found(name, "no such zone in the store");
  if (overlay) {
    return Status::conflict(name,
                            "overlay zone: its keys and metadata belong to the backend that owns "
                            "it (launch that backend first)");
  }
  return id;
}

// Writes outside pdns's transaction get their own (IMMEDIATE: the write lock is taken up
// front, so the busy timeout applies); inside it, a savepoint keeps each call atomic.
Status SqliteKeyStore::write_begin() {
  return impl_->exec(in_transaction_ ? "SAVEPOINT key_store_write" : "BEGIN IMMEDIATE",
                     "begin write");
}

Status SqliteKeyStore::write_end(Status status) {
  if (in_transaction_) {
    if (status.ok()) return impl_->exec("RELEASE key_store_write", "release savepoint");
    impl_->exec("ROLLBACK TO key_store_write", "rollback to savepoint").ok();
    impl_->exec("RELEASE key_store_write", "release savepoint").ok();
    return status;
  }
  if (status.ok()) {
    status = impl_->exec("COMMIT", "commit");
    if (status.ok()) return status;
  }
  impl_->exec("ROLLBACK", "rollback").ok();
  return status;
}

Status SqliteKeyStore::bump_serial(std::int64_t zone_id) {
  if (in_transaction_) {
    touched_zones_.insert(zone_id);
    return Status();
  }
  // The same rule as smimea-ctl's changes: forward to the current time, or +1 (RFC 1982).
  // A _smimecert.<domain> zone's parent <domain> in the store moves too: it publishes the DS
  // computed from this zone's keys (Answerer, "delegations").
  Statement& s = impl_->bump_serial;
  SMIMEA_RETURN_IF_ERROR(s.prepare(
      impl_->db.get(),
      "UPDATE zones SET serial = CASE WHEN ?2 > serial AND ?2 <= 4294967295 THEN ?2 ELSE "
      "(serial + 1) % 4294967296 END, updated_at = ?2, serial_changed_at = ?2 WHERE id = ?1 OR "
      "(mode = 'authoritative' "
      "AND name = (SELECT substr(c.name, 12) FROM zones c WHERE c.id = ?1 AND c.mode = "
      "'authoritative' AND substr(c.name, 1, 11) = '_smimecert.'))"));
  s.bind(1, zone_id);
  s.bind(2, static_cast<std::int64_t>(std::time(nullptr)));
  if (s.step() != SQLITE_DONE) return impl_->error("bump serial");
  s.reset();
  return Status();
}

Result<std::vector<DomainKey>> SqliteKeyStore::get_domain_keys(std::string_view zone) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  std::vector<DomainKey> keys;
  SMIMEA_RETURN_IF_ERROR(detail::read_domain_keys(impl_->db.get(), impl_->get_keys, *zone_id, &keys)
                             .with_context(normalize_zone(zone)));
  return keys;
}

Result<std::int64_t> SqliteKeyStore::add_domain_key(std::string_view zone, const DomainKey& key) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  if (key.flags > 65535) {
    return Status::invalid_argument(normalize_zone(zone), "key flags over 65535");
  }
  if (key.content.empty()) return Status::invalid_argument(normalize_zone(zone), "empty key");
  SMIMEA_RETURN_IF_ERROR(write_begin());
  std::int64_t id = -1;
  Status s = [&] {
    Statement& ins = impl_->add_key;
    SMIMEA_RETURN_IF_ERROR(ins.prepare(impl_->db.get(),
                                       "INSERT INTO domain_keys (zone_id, flags, active, "
                                       "published, content) VALUES (?1, ?2, ?3, ?4, ?5)"));
    ins.bind(1, *zone_id);
    ins.bind(2, key.flags);
    ins.bind(3, key.active ? 1 : 0);
    ins.bind(4, key.published ? 1 : 0);
    ins.bind_text(5, key.content);
    const int rc = ins.step();
    ins.reset();
    if (rc != SQLITE_DONE) return impl_->error("add key to " + normalize_zone(zone));
    id = sqlite3_last_insert_rowid(impl_->db.get());
    return bump_serial(*zone_id);
  }();
  SMIMEA_RETURN_IF_ERROR(write_end(std::move(s)));
  return id;
}

namespace {

// One UPDATE/DELETE of a key by (zone, id); NotFound if no row changed.
Status change_key(sqlite3* db, Statement& stmt, const char* sql, std::int64_t zone_id,
                  std::int64_t key_id, const std::int64_t* value, const std::string& what) {
  SMIMEA_RETURN_IF_ERROR(stmt.prepare(db, sql));
  stmt.bind(1, zone_id);
  stmt.bind(2, key_id);
  if (value != nullptr) stmt.bind(3, *value);
  const int rc = stmt.step();
  stmt.reset();
  if (rc != SQLITE_DONE) return sqlite_error(db, what);
  if (sqlite3_changes(db) == 0) return Status::not_found(what, "no such key");
  return Status();
}

}  // namespace

Status SqliteKeyStore::remove_domain_key(std::string_view zone, std::int64_t id) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  SMIMEA_RETURN_IF_ERROR(write_begin());
  Status s = change_key(impl_->db.get(), impl_->remove_key,
                        "DELETE FROM domain_keys WHERE zone_id = ?1 AND id = ?2", *zone_id, id,
                        nullptr, normalize_zone(zone) + " key " + std::to_string(id));
  if (s.ok()) s = bump_serial(*zone_id);
  return write_end(std::move(s));
}

Status SqliteKeyStore::set_key_active(std::string_view zone, std::int64_t id, bool active) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  SMIMEA_RETURN_IF_ERROR(write_begin());
  const std::int64_t value = active ? 1 : 0;
  Status s = change_key(impl_->db.get(), impl_->set_active,
                        "UPDATE domain_keys SET active = ?3 WHERE zone_id = ?1 AND id = ?2",
                        *zone_id, id, &value, normalize_zone(zone) + " key " + std::to_string(id));
  if (s.ok()) s = bump_serial(*zone_id);
  return write_end(std::move(s));
}

Status SqliteKeyStore::set_key_published(std::string_view zone, std::int64_t id, bool published) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  SMIMEA_RETURN_IF_ERROR(write_begin());
  const std::int64_t value = published ? 1 : 0;
  Status s = change_key(impl_->db.get(), impl_->set_published,
                        "UPDATE domain_keys SET published = ?3 WHERE zone_id = ?1 AND id = ?2",
                        *zone_id, id, &value, normalize_zone(zone) + " key " + std::to_string(id));
  if (s.ok()) s = bump_serial(*zone_id);
  return write_end(std::move(s));
}

Result<DomainMetadata> SqliteKeyStore::get_all_domain_metadata(std::string_view zone) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  Statement& s = impl_->get_all_meta;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(),
                "SELECT kind, content FROM domain_metadata WHERE zone_id = ?1 ORDER BY kind, id"));
  s.bind(1, *zone_id);
  DomainMetadata meta;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    meta[std::string(s.text(0))].emplace_back(s.text(1));
  }
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("get metadata of " + normalize_zone(zone));
  return meta;
}

Result<std::vector<std::string>> SqliteKeyStore::get_domain_metadata(std::string_view zone,
                                                                     std::string_view kind) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  Statement& s = impl_->get_meta;
  SMIMEA_RETURN_IF_ERROR(s.prepare(
      impl_->db.get(),
      "SELECT content FROM domain_metadata WHERE zone_id = ?1 AND kind = ?2 ORDER BY id"));
  s.bind(1, *zone_id);
  s.bind_text(2, kind);
  std::vector<std::string> values;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) values.emplace_back(s.text(0));
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("get metadata of " + normalize_zone(zone));
  return values;
}

Status SqliteKeyStore::set_domain_metadata(std::string_view zone, std::string_view kind,
                                           const std::vector<std::string>& values) {
  auto zone_id = find_zone(zone);
  if (!zone_id.ok()) return zone_id.status();
  if (kind.empty()) return Status::invalid_argument(normalize_zone(zone), "empty metadata kind");
  SMIMEA_RETURN_IF_ERROR(write_begin());
  Status s = [&] {
    const std::string what = "set metadata " + std::string(kind) + " of " + normalize_zone(zone);
    Statement& del = impl_->delete_meta;
    SMIMEA_RETURN_IF_ERROR(del.prepare(
        impl_->db.get(), "DELETE FROM domain_metadata WHERE zone_id = ?1 AND kind = ?2"));
    del.bind(1, *zone_id);
    del.bind_text(2, kind);
    int rc = del.step();
    del.reset();
    if (rc != SQLITE_DONE) return impl_->error(what);
    Statement& ins = impl_->insert_meta;
    for (const std::string& value : values) {
      SMIMEA_RETURN_IF_ERROR(
          ins.prepare(impl_->db.get(),
                      "INSERT INTO domain_metadata (zone_id, kind, content) VALUES (?1, ?2, ?3)"));
      ins.bind(1, *zone_id);
      ins.bind_text(2, kind);
      ins.bind_text(3, value);
      rc = ins.step();
      ins.reset();
      if (rc != SQLITE_DONE) return impl_->error(what);
    }
    return bump_serial(*zone_id);
  }();
  return write_end(std::move(s));
}

Status SqliteKeyStore::set_notified(std::int64_t zone_id, std::uint32_t serial) {
  SMIMEA_RETURN_IF_ERROR(open());
  SMIMEA_RETURN_IF_ERROR(write_begin());
  Status s = [&] {
    const std::string what = "set notified serial of zone id " + std::to_string(zone_id);
    const bool catalog = zone_id == kCatalogZoneId;  // the catalog's row (store.h)
    Statement catalog_st;
    Statement& st = catalog ? catalog_st : impl_->set_notified;
    SMIMEA_RETURN_IF_ERROR(st.prepare(
        impl_->db.get(), catalog ? "UPDATE catalog SET notified_serial = ?2 WHERE id = ?1"
                                 : "UPDATE zones SET notified_serial = ?2 WHERE id = ?1"));
    st.bind(1, zone_id);
    st.bind(2, static_cast<std::int64_t>(serial));
    const int rc = st.step();
    st.reset();
    if (rc != SQLITE_DONE) return impl_->error(what);
    if (sqlite3_changes(impl_->db.get()) == 0) return Status::not_found(what, "no such zone");
    return Status();
  }();
  return write_end(std::move(s));
}

Result<TsigKey> SqliteKeyStore::get_tsig_key(std::string_view name) {
  SMIMEA_RETURN_IF_ERROR(open());
  const std::string key_name = normalize_zone(name);
  Statement& s = impl_->get_tsig;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), "SELECT name, algorithm, secret FROM tsig_keys WHERE name = ?1"));
  s.bind_text(1, key_name);
  const int rc = s.step();
  if (rc == SQLITE_DONE) {
    s.reset();
    return Status::not_found("tsig key " + key_name, "no such key");
  }
  if (rc != SQLITE_ROW) {
    Status error = impl_->error("get tsig key " + key_name);
    s.reset();
    return error;
  }
  TsigKey key{std::string(s.text(0)), std::string(s.text(1)), std::string(s.text(2))};
  s.reset();
  return key;
}

Result<std::vector<TsigKey>> SqliteKeyStore::get_tsig_keys() {
  SMIMEA_RETURN_IF_ERROR(open());
  Statement& s = impl_->get_tsigs;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), "SELECT name, algorithm, secret FROM tsig_keys ORDER BY name"));
  std::vector<TsigKey> keys;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    keys.push_back({std::string(s.text(0)), std::string(s.text(1)), std::string(s.text(2))});
  }
  if (rc != SQLITE_DONE) {
    Status error = impl_->error("get tsig keys");
    s.reset();
    return error;
  }
  s.reset();
  return keys;
}

Status SqliteKeyStore::set_tsig_key(const TsigKey& key) {
  const std::string name = normalize_zone(key.name);
  const std::string algorithm = normalize_zone(key.algorithm);
  // The secret is not part of any message.
  if (name.empty()) return Status::invalid_argument("tsig key", "empty key name");
  if (algorithm.empty()) return Status::invalid_argument("tsig key " + name, "empty algorithm");
  if (key.secret.empty()) return Status::invalid_argument("tsig key " + name, "empty secret");
  SMIMEA_RETURN_IF_ERROR(open());
  SMIMEA_RETURN_IF_ERROR(write_begin());
  Status s = [&] {
    Statement& st = impl_->set_tsig;
    SMIMEA_RETURN_IF_ERROR(st.prepare(impl_->db.get(),
                                      "INSERT INTO tsig_keys (name, algorithm, secret) "
                                      "VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET "
                                      "algorithm = excluded.algorithm, secret = excluded.secret"));
    st.bind_text(1, name);
    st.bind_text(2, algorithm);
    st.bind_text(3, key.secret);
    const int rc = st.step();
    st.reset();
    if (rc != SQLITE_DONE) return impl_->error("set tsig key " + name);
    return Status();
  }();
  return write_end(std::move(s));
}

Status SqliteKeyStore::delete_tsig_key(std::string_view name) {
  const std::string key_name = normalize_zone(name);
  SMIMEA_RETURN_IF_ERROR(open());
  SMIMEA_RETURN_IF_ERROR(write_begin());
  Status s = [&] {
    Statement& st = impl_->delete_tsig;
    SMIMEA_RETURN_IF_ERROR(st.prepare(impl_->db.get(), "DELETE FROM tsig_keys WHERE name = ?1"));
    st.bind_text(1, key_name);
    const int rc = st.step();
    st.reset();
    if (rc != SQLITE_DONE) return impl_->error("delete tsig key " + key_name);
    return Status();
  }();
  return write_end(std::move(s));
}

Status SqliteKeyStore::begin() {
  if (in_transaction_) return Status::conflict("begin transaction", "a transaction is open");
  SMIMEA_RETURN_IF_ERROR(open());
  SMIMEA_RETURN_IF_ERROR(impl_->exec("BEGIN IMMEDIATE", "begin transaction"));
  in_transaction_ = true;
  touched_zones_.clear();
  return Status();
}

Status SqliteKeyStore::commit() {
  if (!in_transaction_) return Status::conflict("commit", "no transaction is open");
  in_transaction_ = false;  // from here on bump_serial() writes instead of collecting
  Status s;
  for (const std::int64_t zone_id : touched_zones_) {
    s = bump_serial(zone_id);
    if (!s.ok()) break;
  }
  touched_zones_.clear();
  if (s.ok()) s = impl_->exec("COMMIT", "commit transaction");
  if (!s.ok()) impl_->exec("ROLLBACK", "rollback").ok();
  return s;
}

Status SqliteKeyStore::rollback() {
  if (!in_transaction_) return Status::conflict("abort", "no transaction is open");
  in_transaction_ = false;
  touched_zones_.clear();
  return impl_->exec("ROLLBACK", "rollback transaction");
}

Result<OwnerNeighbours> SqliteKeyStore::owner_neighbours(std::int64_t zone_id,
                                                         const OwnerHash& bound) {
  SMIMEA_RETURN_IF_ERROR(open());
  Statement& s = impl_->neighbours;
  SMIMEA_RETURN_IF_ERROR(s.prepare(
      impl_->db.get(),
      "SELECT (SELECT owner FROM records WHERE zone_id = ?1 AND owner <= ?2 AND not_after >= ?3 "
      "ORDER BY owner DESC LIMIT 1), (SELECT owner FROM records WHERE zone_id = ?1 AND owner > "
      "?2 AND not_after >= ?3 ORDER BY owner LIMIT 1)"));
  s.bind(1, zone_id);
  s.bind_blob(2, bound.data(), bound.size());
  s.bind(3, served_since());
  if (s.step() != SQLITE_ROW) {
    Status error = impl_->error("nsec neighbours");
    s.reset();
    return error;
  }
  OwnerNeighbours out;
  for (int col = 0; col < 2; ++col) {
    if (s.is_null(col) || s.bytes(col) != kOwnerHashLen) continue;
    OwnerHash h{};
    std::copy(s.blob(col), s.blob(col) + kOwnerHashLen, h.begin());
    (col == 0 ? out.at_or_before : out.after) = h;
  }
  s.reset();
  return out;
}

Result<std::optional<OwnerHash>> SqliteKeyStore::first_owner(std::int64_t zone_id) {
  SMIMEA_RETURN_IF_ERROR(open());
  Statement& s = impl_->first_owner;
  SMIMEA_RETURN_IF_ERROR(s.prepare(
      impl_->db.get(),
      "SELECT owner FROM records WHERE zone_id = ?1 AND not_after >= ?2 ORDER BY owner LIMIT 1"));
  s.bind(1, zone_id);
  s.bind(2, served_since());
  const int rc = s.step();
  std::optional<OwnerHash> out;
  if (rc == SQLITE_ROW && s.bytes(0) == kOwnerHashLen) {
    OwnerHash h{};
    std::copy(s.blob(0), s.blob(0) + kOwnerHashLen, h.begin());
    out = h;
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    Status error = impl_->error("nsec first owner");
    s.reset();
    return error;
  }
  s.reset();
  return out;
}

Result<std::optional<std::int64_t>> SqliteKeyStore::move_serials_of_expired(std::int64_t now) {
  SMIMEA_RETURN_IF_ERROR(open());
  if (in_transaction_) return Status::conflict("move serials", "a transaction is open");
  sqlite3* db = impl_->db.get();
  // A read first: most runs find nothing, and need no write lock. The range on
  // idx_certificates_not_after starts at the oldest serial change of any zone.
  Statement& find = impl_->expired_zones;
  SMIMEA_RETURN_IF_ERROR(find.prepare(
      db,
      "SELECT DISTINCT z.id FROM certificates c JOIN zones z ON z.id = c.zone_id WHERE "
      "c.not_after < ?1 AND c.not_after >= (SELECT min(serial_changed_at) FROM zones) AND "
      "c.not_after >= z.serial_changed_at AND z.mode = 'authoritative'"));
  find.bind(1, now);
  std::vector<std::int64_t> zones;
  int rc;
  while ((rc = find.step()) == SQLITE_ROW) zones.push_back(find.int64(0));
  find.reset();
  if (rc != SQLITE_DONE) return impl_->error("find zones with expired certificates");
  if (!zones.empty()) {
    SMIMEA_RETURN_IF_ERROR(write_begin());
    Status s = [&] {
      // The same rule as every serial change (bump_serial), checked again inside the write
      // transaction: another process may have moved it since the read.
      Statement& move = impl_->move_expired;
      SMIMEA_RETURN_IF_ERROR(move.prepare(
          db,
          "UPDATE zones SET serial = CASE WHEN ?2 > serial AND ?2 <= 4294967295 THEN ?2 ELSE "
          "(serial + 1) % 4294967296 END, updated_at = ?2, serial_changed_at = ?2 WHERE id = ?1 "
          "AND EXISTS (SELECT 1 FROM certificates c WHERE c.zone_id = ?1 AND c.not_after < ?2 "
          "AND c.not_after >= zones.serial_changed_at)"));
      for (const std::int64_t zone_id : zones) {
        move.bind(1, zone_id);
        move.bind(2, now);
        const int step = move.step();
        move.reset();
        if (step != SQLITE_DONE) return impl_->error("move serial after expiry");
      }
      return Status();
    }();
    SMIMEA_RETURN_IF_ERROR(write_end(std::move(s)));
  }
  Statement& next = impl_->next_expiry;
  SMIMEA_RETURN_IF_ERROR(
      next.prepare(db, "SELECT min(not_after) FROM certificates WHERE not_after >= ?1"));
  next.bind(1, now);
  rc = next.step();
  std::optional<std::int64_t> out;
  if (rc == SQLITE_ROW && !next.is_null(0)) out = next.int64(0);
  next.reset();
  if (rc != SQLITE_ROW) return impl_->error("next expiry");
  return out;
}

}  // namespace smimea
