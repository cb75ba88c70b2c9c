#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "smimea/owner_name.h"
#include "smimea/store.h"
#include "sqlite_util.h"
#include "store_schema.h"  // generated from schema/: kSchemaSql, kMigrations

namespace smimea {

using detail::read_user_version;
using detail::sqlite_error;
using detail::Statement;

std::string_view zone_mode_name(ZoneMode mode) {
  return mode == ZoneMode::kOverlay ? "overlay" : "authoritative";
}

std::optional<ZoneMode> parse_zone_mode(std::string_view name) {
  if (name == "authoritative") return ZoneMode::kAuthoritative;
  if (name == "overlay") return ZoneMode::kOverlay;
  return std::nullopt;
}

std::string_view zone_kind_name(ZoneKind kind) {
  return kind == ZoneKind::kNative ? "native" : "master";
}

std::optional<ZoneKind> parse_zone_kind(std::string_view name) {
  if (name == "master") return ZoneKind::kMaster;
  if (name == "native") return ZoneKind::kNative;
  return std::nullopt;
}

namespace {

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

Status exec(sqlite3* db, const char* sql, std::string_view what) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return sqlite_error(db, what);
  }
  return Status();
}

Result<std::int64_t> query_int(sqlite3* db, const char* sql, std::string_view what) {
  Statement s;
  SMIMEA_RETURN_IF_ERROR(s.prepare(db, sql).with_context(what));
  const int rc = s.step();
  if (rc != SQLITE_ROW) return sqlite_error(db, what);
  return s.int64(0);
}

Result<DbPtr> open_db(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    if (!db) return Status::store_error(path, "cannot open database: out of memory");
    return sqlite_error(db.get(), path + ": cannot open database");
  }
  sqlite3_extended_result_codes(db.get(), 1);
  return db;
}

Result<int> schema_version(sqlite3* db, const std::string& path) {
  auto version = read_user_version(db, path);
  if (!version.ok()) return version.status();
  return static_cast<int>(*version);
}

}  // namespace

struct Store::Impl {
  DbPtr db;
  StoreOptions options;
  std::string path;
  std::int64_t data_version = -1;
  std::set<std::int64_t> touched_zones;
  // Hot path statements, prepared once per connection.
  Statement find_records;
  Statement data_version_stmt;
  Statement begin_read_stmt, end_read_stmt;
  // Everything else, prepared on first use.
  Statement load_zones, list_zone, find_zone, add_zone, cert_by_fp, insert_cert, rr_exists,
      rrset_size, insert_record, bump_serial, set_kind;
  bool cursor_open = false;  // list_zone is held by a ZoneCursor
  bool in_read = false;      // inside begin_read()
  // find_records: the rows of the owner seen so far (reused, so a warm lookup allocates
  // nothing).
  struct SeenRecord {
    RecordParams params;
    std::size_t offset, size;
  };
  std::vector<SeenRecord> seen;
  std::string seen_data;

  Status error(std::string_view what) const { return sqlite_error(db.get(), what); }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<int> Store::init(const std::string& path) {
  // SQLite makes new files 0644 whatever the umask. Make the store like any other file (0666
  // minus the umask), so that umask 007 gives its group write access; SQLite gives the -wal
  // and -shm files the store's mode. An empty file is an empty database.
  if (const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666); fd >= 0) {
    ::close(fd);
  }
  auto db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return db.status();
  sqlite3* h = db->get();
  sqlite3_busy_timeout(h, 5000);
  auto version = schema_version(h, path);
  if (!version.ok()) return version.status();
  const int before = *version;
  if (before > kSchemaVersion) {
    return Status::store_error(path, "store is at schema version " + std::to_string(before) +
                                         ", newer than this program's " +
                                         std::to_string(kSchemaVersion) + ": upgrade smimea");
  }
  // WAL lets the backend read while smimea-ctl writes; the setting is stored in the file.
  SMIMEA_RETURN_IF_ERROR(exec(h, "PRAGMA journal_mode=WAL", path + ": set WAL mode"));
  if (before == kSchemaVersion) return before;
  if (before == 0) {
    auto tables = query_int(h, "SELECT count(*) FROM sqlite_master", path);
    if (!tables.ok()) return tables.status();
    if (*tables != 0) {
      return Status::store_error(path, "not a smimea store (the database has other tables)");
    }
    SMIMEA_RETURN_IF_ERROR(exec(h, "BEGIN IMMEDIATE", path + ": begin"));
    Status s = exec(h, detail::kSchemaSql, path + ": create schema");
    if (!s.ok()) {
      exec(h, "ROLLBACK", "rollback").ok();
      return s;
    }
    SMIMEA_RETURN_IF_ERROR(exec(h, "COMMIT", path + ": commit"));
    return before;
  }
  for (const auto& migration : detail::kMigrations) {
    if (migration.sql == nullptr || migration.version <= before) continue;
    SMIMEA_RETURN_IF_ERROR(exec(h, "BEGIN IMMEDIATE", path + ": begin"));
    Status s = exec(h, migration.sql,
                    path + ": migration to version " + std::to_string(migration.version));
    if (!s.ok()) {
      exec(h, "ROLLBACK", "rollback").ok();
      return s;
    }
    SMIMEA_RETURN_IF_ERROR(exec(h, "COMMIT", path + ": commit"));
  }
  return before;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const StoreOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::store_error(path, "store not found (create it with smimea-ctl init)");
  }
  if (!S_ISREG(st.st_mode)) return Status::store_error(path, "not a regular file");
  auto db = open_db(path, SQLITE_OPEN_READWRITE);
  if (!db.ok() && options.read_only) {
    // A reader without write access to the file can still read it (WAL needs the -shm file
    // to exist, which smimea-ctl leaves behind).
    db = open_db(path, SQLITE_OPEN_READONLY);
  }
  if (!db.ok()) return db.status();
  sqlite3* h = db->get();
  sqlite3_busy_timeout(h, static_cast<int>(options.busy_timeout_ms));
  auto version = schema_version(h, path);
  if (!version.ok()) return version.status();
  if (*version == 0) {
    return Status::store_error(path, "not a smimea store (create it with smimea-ctl init)");
  }
  if (*version > kSchemaVersion) {
    return Status::store_error(path, "store is at schema version " + std::to_string(*version) +
                                         ", newer than this program's " +
                                         std::to_string(kSchemaVersion) + ": upgrade smimea");
  }
  if (*version < kSchemaVersion) {
    return Status::store_error(path, "store is at schema version " + std::to_string(*version) +
                                         ": run smimea-ctl init to migrate it to " +
                                         std::to_string(kSchemaVersion));
  }
  const std::string pragmas = "PRAGMA foreign_keys=ON; PRAGMA cache_size=-" +
                              std::to_string(options.cache_kib) +
                              "; PRAGMA mmap_size=" + std::to_string(options.mmap_bytes) + ";" +
                              (options.read_only ? " PRAGMA query_only=ON;" : "");
  SMIMEA_RETURN_IF_ERROR(exec(h, pragmas.c_str(), path + ": configure connection"));
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db).value();
  impl->options = options;
  impl->path = path;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::find_records(std::int64_t zone_id, const OwnerHash& owner, RecordVisitor& visitor) {
  Statement& s = impl_->find_records;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(),
                                   "SELECT usage, selector, matching_type, ttl, data FROM records "
                                   "WHERE zone_id = ?1 AND owner = ?2 ORDER BY id"));
  s.bind(1, zone_id);
  s.bind_blob(2, owner.data(), owner.size());
  // Certificates that give an owner the same record (the same RDATA) publish it once, the
  // first by id. An owner has one or a few rows: comparing each with the rows before it costs
  // less than SQL's correlated NOT EXISTS (a second index search per row), which list_zone
  // keeps.
  std::vector<Impl::SeenRecord>& seen = impl_->seen;
  std::string& seen_data = impl_->seen_data;
  seen.clear();
  seen_data.clear();
  RecordView view;
  view.owner = &owner;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    view.params = RecordParams{static_cast<Usage>(s.int64(0)), static_cast<Selector>(s.int64(1)),
                               static_cast<MatchingType>(s.int64(2))};
    view.ttl = static_cast<std::uint32_t>(s.int64(3));
    view.data = s.blob(4);
    view.size = s.bytes(4);
    const bool repeated = std::any_of(seen.begin(), seen.end(), [&](const Impl::SeenRecord& r) {
      return r.params == view.params && r.size == view.size &&
             seen_data.compare(r.offset, r.size, reinterpret_cast<const char*>(view.data),
                               view.size) == 0;
    });
    if (repeated) continue;
    seen.push_back({view.params, seen_data.size(), view.size});
    seen_data.append(reinterpret_cast<const char*>(view.data), view.size);
    visitor.visit(view);
  }
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("lookup");
  return Status();
}

Result<bool> Store::data_changed() {
  Statement& s = impl_->data_version_stmt;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), "PRAGMA data_version"));
  if (s.step() != SQLITE_ROW) return impl_->error("data_version");
  const std::int64_t v = s.int64(0);
  s.reset();
  const bool changed = v != impl_->data_version;
  impl_->data_version = v;
  return changed;
}

Status Store::load_zones(std::vector<Zone>* zones) {
  Statement& s = impl_->load_zones;
  SMIMEA_RETURN_IF_ERROR(s.prepare(
      impl_->db.get(),
      "SELECT id, name, mode, serial, notified_serial, "
      "EXISTS (SELECT 1 FROM records r WHERE r.zone_id = z.id), kind FROM zones z ORDER BY name"));
  std::vector<Zone> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    Zone z;
    z.id = s.int64(0);
    z.name.assign(s.text(1));
    z.mode = parse_zone_mode(s.text(2)).value_or(ZoneMode::kAuthoritative);
    z.serial = static_cast<std::uint32_t>(s.int64(3));
    z.notified_serial = s.is_null(4) ? -1 : s.int64(4);
    z.has_records = s.int64(5) != 0;
    z.kind = parse_zone_kind(s.text(6)).value_or(ZoneKind::kMaster);
    out.push_back(std::move(z));
  }
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("load zones");
  *zones = std::move(out);
  return Status();
}

namespace {

// Steps the list statement one row per next(). The statement's read lasts from the first step
// to the reset: the whole transfer sees one snapshot, however long pdns takes to send it.
class SqliteZoneCursor final : public ZoneCursor {
 public:
  SqliteZoneCursor(sqlite3* db, Statement& stmt, bool& open_flag)
      : db_(db), stmt_(stmt), open_flag_(open_flag) {
    open_flag_ = true;
  }
  ~SqliteZoneCursor() override {
    stmt_.reset();
    open_flag_ = false;
  }
  SqliteZoneCursor(const SqliteZoneCursor&) = delete;
  SqliteZoneCursor& operator=(const SqliteZoneCursor&) = delete;

  Result<bool> next(RecordView* record) override {
    while (!done_) {
      const int rc = stmt_.step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        Status error = sqlite_error(db_, "list zone");
        done_ = true;
        stmt_.reset();
        return error;
      }
      if (stmt_.bytes(0) != owner_.size()) continue;  // the CHECK constraint rules this out
      std::copy(stmt_.blob(0), stmt_.blob(0) + owner_.size(), owner_.begin());
      record->owner = &owner_;
      record->params =
          RecordParams{static_cast<Usage>(stmt_.int64(1)), static_cast<Selector>(stmt_.int64(2)),
                       static_cast<MatchingType>(stmt_.int64(3))};
      record->ttl = static_cast<std::uint32_t>(stmt_.int64(4));
      record->data = stmt_.blob(5);
      record->size = stmt_.bytes(5);
      return true;
    }
    done_ = true;
    stmt_.reset();  // ends the read now, not when the cursor goes
    return false;
  }

 private:
  sqlite3* db_;
  Statement& stmt_;
  bool& open_flag_;
  OwnerHash owner_{};
  bool done_ = false;
};

}  // namespace

Result<std::unique_ptr<ZoneCursor>> Store::open_zone_cursor(std::int64_t zone_id) {
  if (impl_->cursor_open) return Status::conflict("list zone", "a zone listing is already open");
  Statement& s = impl_->list_zone;
  // (zone_id, owner) index order, rowid last: no sort, rows come as the index is walked.
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(),
                                   "SELECT owner, usage, selector, matching_type, ttl, data "
                                   "FROM records r WHERE zone_id = ?1 AND NOT EXISTS ("
                                   "SELECT 1 FROM records d WHERE d.zone_id = ?1 AND "
                                   "d.owner = r.owner AND d.id < r.id AND d.usage = r.usage AND "
                                   "d.selector = r.selector AND d.matching_type = "
                                   "r.matching_type AND d.data = r.data) ORDER BY owner, id"));
  s.bind(1, zone_id);
  return std::unique_ptr<ZoneCursor>(new SqliteZoneCursor(impl_->db.get(), s, impl_->cursor_open));
}

Status Store::list_zone(std::int64_t zone_id, RecordVisitor& visitor) {
  auto cursor = open_zone_cursor(zone_id);
  if (!cursor.ok()) return cursor.status();
  RecordView view;
  for (;;) {
    auto more = (*cursor)->next(&view);
    if (!more.ok()) return more.status();
    if (!*more) return Status();
    visitor.visit(view);
  }
}

Status Store::begin_read() {
  if (impl_->in_read) return Status::conflict("begin read", "a read transaction is open");
  if (sqlite3_get_autocommit(impl_->db.get()) == 0) {
    return Status::conflict("begin read", "a transaction is open");
  }
  // DEFERRED: the snapshot is taken by the first read and kept until end_read(). Prepared
  // once: lookups begin one every millisecond (see Answerer).
  Statement& s = impl_->begin_read_stmt;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), "BEGIN DEFERRED"));
  const int rc = s.step();
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("begin read");
  impl_->in_read = true;
  return Status();
}

void Store::end_read() noexcept {
  if (!impl_->in_read) return;
  impl_->in_read = false;
  if (sqlite3_get_autocommit(impl_->db.get()) != 0) return;
  Statement& s = impl_->end_read_stmt;
  if (s.prepare(impl_->db.get(), "COMMIT").ok()) {
    s.step();
    s.reset();
  } else {
    sqlite3_exec(impl_->db.get(), "COMMIT", nullptr, nullptr, nullptr);
  }
}

Result<Zone> Store::find_zone(std::string_view name) {
  Statement& s = impl_->find_zone;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(),
                "SELECT id, name, mode, serial, notified_serial, "
                "EXISTS (SELECT 1 FROM records r WHERE r.zone_id = z.id), kind FROM zones z "
                "WHERE name = ?1"));
  s.bind_text(1, name);
  const int rc = s.step();
  if (rc == SQLITE_DONE) {
    s.reset();
    return Status::not_found(std::string(name), "no such zone");
  }
  if (rc != SQLITE_ROW) return impl_->error("find zone");
  Zone z;
  z.id = s.int64(0);
  z.name.assign(s.text(1));
  z.mode = parse_zone_mode(s.text(2)).value_or(ZoneMode::kAuthoritative);
  z.serial = static_cast<std::uint32_t>(s.int64(3));
  z.notified_serial = s.is_null(4) ? -1 : s.int64(4);
  z.has_records = s.int64(5) != 0;
  z.kind = parse_zone_kind(s.text(6)).value_or(ZoneKind::kMaster);
  s.reset();
  return z;
}

Result<std::vector<CertInfo>> Store::list_certificates(std::string_view address,
                                                       std::string_view zone) {
  sqlite3* db = impl_->db.get();
  // Only the filters given: "(?1 = '' OR address = ?1)" would keep SQLite from using
  // idx_certificates_address, and listing one address would scan every certificate. With both,
  // the unary + keeps the planner on the address's few rows rather than the zone's many.
  std::string sql =
      "SELECT c.id, c.address, z.name, c.fingerprint, c.subject, c.issuer, c.serial, "
      "c.not_before, c.not_after, c.created_at, c.domain FROM certificates c "
      "JOIN zones z ON z.id = c.zone_id WHERE 1";
  if (!address.empty()) sql += " AND c.address = ?1 COLLATE NOCASE";
  if (!zone.empty()) sql += address.empty() ? " AND z.name = ?2" : " AND +z.name = ?2";
  sql += " ORDER BY c.address, c.id";
  Statement certs;
  SMIMEA_RETURN_IF_ERROR(certs.prepare(db, sql));
  if (!address.empty()) certs.bind_text(1, address);
  if (!zone.empty()) certs.bind_text(2, zone);
  Statement recs;
  std::vector<CertInfo> out;
  int rc;
  while ((rc = certs.step()) == SQLITE_ROW) {
    CertInfo info;
    info.id = certs.int64(0);
    info.address.assign(certs.text(1));
    info.zone.assign(certs.text(2));
    if (certs.bytes(3) == info.fingerprint.size()) {
      std::copy(certs.blob(3), certs.blob(3) + info.fingerprint.size(), info.fingerprint.begin());
    }
    info.subject.assign(certs.text(4));
    info.issuer.assign(certs.text(5));
    info.serial.assign(certs.text(6));
    info.not_before = certs.int64(7);
    info.not_after = certs.int64(8);
    info.created_at = certs.int64(9);
    const std::string domain(certs.text(10));
    SMIMEA_RETURN_IF_ERROR(recs.prepare(db,
                                        "SELECT owner, usage, selector, matching_type, ttl, "
                                        "length(data) FROM records WHERE certificate_id = ?1 "
                                        "ORDER BY id"));
    recs.bind(1, info.id);
    int rrc;
    while ((rrc = recs.step()) == SQLITE_ROW) {
      OwnerHash owner{};
      if (recs.bytes(0) == owner.size()) std::copy(recs.blob(0), recs.blob(0) + 28, owner.begin());
      CertRecordInfo r;
      r.owner_name = owner_name(owner, domain);
      r.params =
          RecordParams{static_cast<Usage>(recs.int64(1)), static_cast<Selector>(recs.int64(2)),
                       static_cast<MatchingType>(recs.int64(3))};
      r.ttl = static_cast<std::uint32_t>(recs.int64(4));
      r.data_size = static_cast<std::size_t>(recs.int64(5));
      info.records.push_back(std::move(r));
    }
    if (rrc != SQLITE_DONE) return impl_->error("list records");
    out.push_back(std::move(info));
  }
  if (rc != SQLITE_DONE) return impl_->error("list certificates");
  return out;
}

Status Store::integrity_check() {
  Statement s;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), "PRAGMA integrity_check"));
  if (s.step() != SQLITE_ROW) return impl_->error("integrity check");
  const std::string result(s.text(0));
  if (result != "ok") return Status::store_error(impl_->path, "integrity check: " + result);
  return Status();
}

Status Store::begin() {
  impl_->touched_zones.clear();
  return exec(impl_->db.get(), "BEGIN IMMEDIATE", "begin transaction");
}

Status Store::commit() {
  Statement& s = impl_->bump_serial;
  for (std::int64_t zone_id : impl_->touched_zones) {
    // The serial moves forward on every change (RFC 1982 arithmetic: +1 wraps at 2^32), and
    // jumps to the current time when that is larger, so it also encodes when it changed.
    SMIMEA_RETURN_IF_ERROR(
        s.prepare(impl_->db.get(),
                  "UPDATE zones SET serial = CASE WHEN ?2 > serial AND ?2 <= 4294967295 THEN ?2 "
                  "ELSE (serial + 1) % 4294967296 END, updated_at = ?2 WHERE id = ?1"));
    s.bind(1, zone_id);
    s.bind(2, now_seconds());
    if (s.step() != SQLITE_DONE) return impl_->error("bump serial");
  }
  impl_->touched_zones.clear();
  if (sqlite3_exec(impl_->db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Status st = impl_->error("commit");
    rollback();
    return st;
  }
  return Status();
}

void Store::rollback() noexcept {
  impl_->touched_zones.clear();
  if (sqlite3_get_autocommit(impl_->db.get()) == 0) {
    sqlite3_exec(impl_->db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

namespace {

// Moves the certificates that `where` picks (a condition on certificates, with ?2 and, if
// given, ?3 bound to p2 and p3) into zone `to`, with their records. Returns how many moved.
Result<int> move_certificates(sqlite3* db, std::string_view where, std::int64_t to, std::int64_t p2,
                              std::optional<std::string_view> p3 = {}) {
  const std::string picked(where);
  for (const std::string& sql :
       {"UPDATE records SET zone_id = ?1 WHERE certificate_id IN (SELECT id FROM certificates "
        "WHERE " +
            picked + ")",
        "UPDATE certificates SET zone_id = ?1 WHERE " + picked}) {
    Statement move;
    SMIMEA_RETURN_IF_ERROR(move.prepare(db, sql));
    move.bind(1, to);
    move.bind(2, p2);
    if (p3) move.bind_text(3, *p3);
    if (move.step() != SQLITE_DONE) return sqlite_error(db, "move certificates");
  }
  return sqlite3_changes(db);  // of the certificates
}

}  // namespace

Result<Zone> Store::add_zone(std::string_view name, ZoneMode mode, ZoneKind kind, int* moved) {
  if (moved != nullptr) *moved = 0;
  auto existing = find_zone(name);
  if (existing.ok()) return Status::conflict(std::string(name), "zone already exists");
  if (!existing.status().is_not_found()) return existing.status();
  Statement& s = impl_->add_zone;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(),
                                   "INSERT INTO zones (name, mode, serial, created_at, "
                                   "updated_at, kind) VALUES (?1, ?2, ?3, ?3, ?3, ?4)"));
  s.bind_text(1, name);
  const std::string_view mode_name = zone_mode_name(mode);
  s.bind_text(2, mode_name);
  s.bind(3, now_seconds());
  const std::string_view kind_name = zone_kind_name(kind);
  s.bind_text(4, kind_name);
  if (s.step() != SQLITE_DONE) return impl_->error("add zone " + std::string(name));
  s.reset();
  auto zone = find_zone(name);
  if (!zone.ok() || !starts_with_smimecert(name)) return zone;

  // _smimecert.<domain>: the certificates of <domain> stored in the parent zone move here,
  // or queries would come here for them and find nothing.
  const std::string_view domain = name.substr(kSmimecertLabel.size() + 1);
  auto parent = find_zone(domain);
  if (!parent.ok()) return parent.status().is_not_found() ? zone : parent.status();
  auto count = move_certificates(impl_->db.get(), "zone_id = ?2 AND domain = ?3", zone->id,
                                 parent->id, domain);
  if (!count.ok()) return count.status();
  if (*count > 0) impl_->touched_zones.insert(parent->id);  // the new zone's serial is new
  if (moved != nullptr) *moved = *count;
  return zone;
}

Result<Zone> Store::set_zone_kind(std::string_view name, ZoneKind kind) {
  auto zone = find_zone(name);
  if (!zone.ok()) return zone.status();
  Statement& s = impl_->set_kind;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), "UPDATE zones SET kind = ?2, updated_at = ?3 WHERE id = ?1"));
  s.bind(1, zone->id);
  const std::string_view kind_name = zone_kind_name(kind);
  s.bind_text(2, kind_name);
  s.bind(3, now_seconds());
  if (s.step() != SQLITE_DONE) return impl_->error("set kind of zone " + std::string(name));
  s.reset();
  return find_zone(name);
}

Result<int> Store::remove_zone(std::string_view name, bool force, int* moved) {
  if (moved != nullptr) *moved = 0;
  auto zone = find_zone(name);
  if (!zone.ok()) return zone.status();
  sqlite3* db = impl_->db.get();
  if (starts_with_smimecert(name)) {
    // _smimecert.<domain> with <domain> in the store: its certificates go back there (the
    // undoing of add_zone's move), where queries for their owners go once this zone is gone.
    auto parent = find_zone(name.substr(kSmimecertLabel.size() + 1));
    if (!parent.ok() && !parent.status().is_not_found()) return parent.status();
    if (parent.ok()) {
      auto count = move_certificates(db, "zone_id = ?2", parent->id, zone->id);
      if (!count.ok()) return count.status();
      if (*count > 0) impl_->touched_zones.insert(parent->id);
      if (moved != nullptr) *moved = *count;
    }
  }
  Statement count;
  SMIMEA_RETURN_IF_ERROR(count.prepare(db, "SELECT count(*) FROM certificates WHERE zone_id = ?1"));
  count.bind(1, zone->id);
  if (count.step() != SQLITE_ROW) return impl_->error("count certificates");
  const int certs = static_cast<int>(count.int64(0));
  if (certs > 0 && !force) {
    return Status::conflict(std::string(name),
                            "zone still has " + std::to_string(certs) +
                                " certificate(s); use --force to remove them too");
  }
  for (const char* sql :
       {"DELETE FROM records WHERE zone_id = ?1", "DELETE FROM certificates WHERE zone_id = ?1",
        "DELETE FROM zones WHERE id = ?1"}) {
    Statement s;
    SMIMEA_RETURN_IF_ERROR(s.prepare(db, sql));
    s.bind(1, zone->id);
    if (s.step() != SQLITE_DONE) return impl_->error("remove zone " + std::string(name));
  }
  impl_->touched_zones.erase(zone->id);
  return certs;
}

namespace {

// The octets of an owner's RRset in a zone (each distinct RR once), and whether the RR
// (?3, ?4, ?5, ?6) is in it.
constexpr std::string_view kRrsetSizeSql =
    "SELECT COALESCE(SUM(3 + length(data)), 0), COALESCE(MAX(usage = ?3 AND selector = ?4 AND "
    "matching_type = ?5 AND data = ?6), 0) FROM records r WHERE zone_id = ?1 AND owner = ?2 AND "
    "NOT EXISTS (SELECT 1 FROM records d WHERE d.zone_id = ?1 AND d.owner = ?2 AND d.id < r.id "
    "AND d.usage = r.usage AND d.selector = r.selector AND d.matching_type = r.matching_type AND "
    "d.data = r.data)";

}  // namespace

Result<AddResult> Store::add_certificate(const Zone& zone, const NewCertificate& cert) {
  sqlite3* db = impl_->db.get();
  AddResult result;
  result.zone = zone.name;
  Statement& find = impl_->cert_by_fp;
  SMIMEA_RETURN_IF_ERROR(find.prepare(
      db, "SELECT id, zone_id FROM certificates WHERE address = ?1 AND fingerprint = ?2"));
  find.bind_text(1, cert.address);
  find.bind_blob(2, cert.fingerprint.data(), cert.fingerprint.size());
  std::int64_t cert_id = -1;
  std::int64_t stored_zone = -1;
  int rc = find.step();
  if (rc == SQLITE_ROW) {
    cert_id = find.int64(0);
    stored_zone = find.int64(1);
  } else if (rc != SQLITE_DONE) {
    return impl_->error("find certificate");
  }
  find.reset();

  // Everything is checked before anything is written: cert import goes on after a refused
  // certificate and commits the others, so a refusal must leave none of its rows behind. (A
  // savepoint would do too, but it copies every page the certificate touches to a statement
  // journal: gigabytes for a large import.)
  std::vector<const NewCertificate::Record*> to_insert;
  std::vector<std::pair<std::int64_t, std::uint32_t>> new_ttls;  // record id, TTL asked for
  std::vector<std::pair<OwnerHash, std::size_t>> added;  // RRset octets this call adds, by owner
  const bool moving = cert_id >= 0 && stored_zone != zone.id;  // see below
  if (moving) {
    // Its records join this zone's RRsets, where they count against max_rrset_bytes (unless
    // the same RR is published here already).
    Statement rows;
    SMIMEA_RETURN_IF_ERROR(rows.prepare(
        db,
        "SELECT owner, 3 + length(data) FROM records r WHERE certificate_id = ?1 AND NOT EXISTS "
        "(SELECT 1 FROM records d WHERE d.zone_id = ?2 AND d.owner = r.owner AND d.usage = "
        "r.usage AND d.selector = r.selector AND d.matching_type = r.matching_type AND d.data = "
        "r.data)"));
    rows.bind(1, cert_id);
    rows.bind(2, zone.id);
    while ((rc = rows.step()) == SQLITE_ROW) {
      OwnerHash owner{};
      if (rows.blob(0) == nullptr || sqlite3_column_bytes(rows.get(), 0) != owner.size()) {
        return Status::store_error(impl_->path, "record with a malformed owner");
      }
      std::copy(rows.blob(0), rows.blob(0) + owner.size(), owner.begin());
      auto mine =
          std::find_if(added.begin(), added.end(), [&](const auto& a) { return a.first == owner; });
      if (mine == added.end()) mine = added.emplace(added.end(), owner, 0);
      mine->second += static_cast<std::size_t>(rows.int64(1));
    }
    if (rc != SQLITE_DONE) return impl_->error("measure records of " + cert.address);
  }
  auto rrset_too_large = [&](const OwnerHash& owner, std::size_t bytes) {
    return Status::conflict(
        owner_name(owner, cert.domain),
        "RRset would be " + std::to_string(bytes) + " bytes, over max-rrset-bytes (" +
            std::to_string(impl_->options.max_rrset_bytes) + "); remove old certificates first");
  };
  for (const auto& rec : cert.records) {
    if (cert_id >= 0) {
      Statement& exists = impl_->rr_exists;
      SMIMEA_RETURN_IF_ERROR(
          exists.prepare(db,
                         "SELECT id, ttl FROM records WHERE certificate_id = ?1 AND owner = ?2 "
                         "AND usage = ?3 AND selector = ?4 AND matching_type = ?5"));
      exists.bind(1, cert_id);
      exists.bind_blob(2, rec.owner.data(), rec.owner.size());
      exists.bind(3, static_cast<int>(rec.params.usage));
      exists.bind(4, static_cast<int>(rec.params.selector));
      exists.bind(5, static_cast<int>(rec.params.matching_type));
      rc = exists.step();
      if (rc == SQLITE_ROW) {
        // There already; only its TTL may change.
        if (exists.int64(1) != rec.ttl) new_ttls.emplace_back(exists.int64(0), rec.ttl);
        exists.reset();
        continue;
      }
      exists.reset();
      if (rc != SQLITE_DONE) return impl_->error("find record");
    }

    // The same RR may already be published by another certificate row (Alice@ and alice@
    // share the lower-cased owner; a renewal with the same key has the same SPKI digest).
    // Each certificate keeps its own row, so removing one leaves the other's RR in place;
    // readers skip the duplicate, and it does not grow the RRset.
    Statement& size = impl_->rrset_size;
    SMIMEA_RETURN_IF_ERROR(size.prepare(db, kRrsetSizeSql));
    size.bind(1, zone.id);
    size.bind_blob(2, rec.owner.data(), rec.owner.size());
    size.bind(3, static_cast<int>(rec.params.usage));
    size.bind(4, static_cast<int>(rec.params.selector));
    size.bind(5, static_cast<int>(rec.params.matching_type));
    size.bind_blob(6, rec.data.data(), rec.data.size());
    if (size.step() != SQLITE_ROW) return impl_->error("measure RRset");
    const bool published = size.int64(1) != 0;
    const auto stored = static_cast<std::size_t>(size.int64(0));
    size.reset();
    if (!published) {
      auto mine = std::find_if(added.begin(), added.end(),
                               [&](const auto& a) { return a.first == rec.owner; });
      if (mine == added.end()) mine = added.emplace(added.end(), rec.owner, 0);
      mine->second += 3 + rec.data.size();
      const std::size_t bytes = stored + mine->second;
      if (bytes > impl_->options.max_rrset_bytes) return rrset_too_large(rec.owner, bytes);
    }
    to_insert.push_back(&rec);
  }
  if (moving) {
    // Owners that get moved records but no new one were not measured above.
    Statement& size = impl_->rrset_size;
    for (const auto& [owner, bytes] : added) {
      SMIMEA_RETURN_IF_ERROR(size.prepare(db, kRrsetSizeSql));
      size.bind(1, zone.id);
      size.bind_blob(2, owner.data(), owner.size());
      for (int i = 3; i <= 5; ++i) size.bind(i, -1);  // no such RR: only the size counts
      size.bind_blob(6, "", 0);
      if (size.step() != SQLITE_ROW) return impl_->error("measure RRset");
      const auto total = static_cast<std::size_t>(size.int64(0)) + bytes;
      size.reset();
      if (total > impl_->options.max_rrset_bytes) return rrset_too_large(owner, total);
    }
  }

  if (moving) {
    // Stored in another zone than the one its domain's queries go to now (a store from
    // before add_zone moved certificates into a new _smimecert zone): it moves here.
    SMIMEA_RETURN_IF_ERROR(move_certificates(db, "id = ?2", zone.id, cert_id).status());
    impl_->touched_zones.insert(stored_zone);
    impl_->touched_zones.insert(zone.id);
    result.moved = true;
  }
  for (const auto& [record_id, ttl] : new_ttls) {
    Statement update;
    SMIMEA_RETURN_IF_ERROR(update.prepare(db, "UPDATE records SET ttl = ?2 WHERE id = ?1"));
    update.bind(1, record_id);
    update.bind(2, static_cast<std::int64_t>(ttl));
    if (update.step() != SQLITE_DONE) return impl_->error("set TTL for " + cert.address);
    ++result.records_updated;
  }
  if (result.records_updated > 0) impl_->touched_zones.insert(zone.id);
  if (cert_id < 0) {
    Statement& ins = impl_->insert_cert;
    SMIMEA_RETURN_IF_ERROR(ins.prepare(
        db,
        "INSERT INTO certificates (zone_id, address, domain, fingerprint, der, subject, issuer, "
        "serial, not_before, not_after, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"));
    ins.bind(1, zone.id);
    ins.bind_text(2, cert.address);
    ins.bind_text(3, cert.domain);
    ins.bind_blob(4, cert.fingerprint.data(), cert.fingerprint.size());
    ins.bind_blob(5, cert.der.data(), cert.der.size());
    ins.bind_text(6, cert.subject);
    ins.bind_text(7, cert.issuer);
    ins.bind_text(8, cert.serial);
    ins.bind(9, cert.not_before);
    ins.bind(10, cert.not_after);
    ins.bind(11, now_seconds());
    if (ins.step() != SQLITE_DONE) return impl_->error("insert certificate " + cert.address);
    cert_id = sqlite3_last_insert_rowid(db);
  }
  for (const NewCertificate::Record* rec : to_insert) {
    Statement& ins = impl_->insert_record;
    SMIMEA_RETURN_IF_ERROR(ins.prepare(
        db,
        "INSERT INTO records (certificate_id, zone_id, owner, usage, selector, matching_type, "
        "ttl, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    ins.bind(1, cert_id);
    ins.bind(2, zone.id);
    ins.bind_blob(3, rec->owner.data(), rec->owner.size());
    ins.bind(4, static_cast<int>(rec->params.usage));
    ins.bind(5, static_cast<int>(rec->params.selector));
    ins.bind(6, static_cast<int>(rec->params.matching_type));
    ins.bind(7, rec->ttl);
    ins.bind_blob(8, rec->data.data(), rec->data.size());
    if (ins.step() != SQLITE_DONE) return impl_->error("insert record for " + cert.address);
    ++result.records_added;
  }
  if (result.records_added > 0) impl_->touched_zones.insert(zone.id);
  return result;
}

Result<int> Store::remove_certificates(
    std::string_view address, const std::optional<std::array<std::uint8_t, 32>>& fingerprint) {
  sqlite3* db = impl_->db.get();
  Statement sel;
  SMIMEA_RETURN_IF_ERROR(sel.prepare(db,
                                     "SELECT id, zone_id, address = ?1 FROM certificates WHERE "
                                     "address = ?1 COLLATE NOCASE AND (?2 IS NULL OR "
                                     "fingerprint = ?2) ORDER BY 3 DESC"));
  sel.bind_text(1, address);
  if (fingerprint) {
    sel.bind_blob(2, fingerprint->data(), fingerprint->size());
  } else {
    sel.bind_null(2);
  }
  // Alice@ and alice@ are different mailboxes: an exact match wins, and only an address
  // stored with other letter case than the one given is found case-insensitively.
  std::vector<std::pair<std::int64_t, std::int64_t>> victims;
  bool exact = false;
  int rc;
  while ((rc = sel.step()) == SQLITE_ROW) {
    if (sel.int64(2) != 0) {
      exact = true;
    } else if (exact) {
      continue;
    }
    victims.emplace_back(sel.int64(0), sel.int64(1));
  }
  if (rc != SQLITE_DONE) return impl_->error("find certificates");
  for (const auto& [cert_id, zone_id] : victims) {
    for (const char* sql : {"DELETE FROM records WHERE certificate_id = ?1",
                            "DELETE FROM certificates WHERE id = ?1"}) {
      Statement s;
      SMIMEA_RETURN_IF_ERROR(s.prepare(db, sql));
      s.bind(1, cert_id);
      if (s.step() != SQLITE_DONE) return impl_->error("remove certificate");
    }
    impl_->touched_zones.insert(zone_id);
  }
  return static_cast<int>(victims.size());
}

}  // namespace smimea
