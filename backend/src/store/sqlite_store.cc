#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "smimea/owner_name.h"
#include "smimea/store.h"
#include "sqlite_util.h"
#include "store_impl.h"

namespace smimea {

using detail::DbPtr;
using detail::exec;
using detail::now_seconds;
using detail::open_db;
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

// A reader without write access to the file can still read it (WAL needs the -shm file to
// exist, which smimea-ctl leaves behind).
Result<detail::DbPtr> open_store_file(const std::string& path, bool read_only) {
  auto read_write = open_db(path, SQLITE_OPEN_READWRITE);
  if (read_write.ok() || !read_only) return read_write;
  return open_db(path, SQLITE_OPEN_READONLY);
}

}  // namespace

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const StoreOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::store_error(path, "store not found (create it with smimea-ctl init)");
  }
  if (!S_ISREG(st.st_mode)) return Status::store_error(path, "not a regular file");
  auto db = open_store_file(path, options.read_only);
  if (!db.ok()) return db.status();
  sqlite3* h = db->get();
  sqlite3_busy_timeout(h, static_cast<int>(options.busy_timeout_ms));
  auto version = detail::read_user_version(h, path);
  if (!version.ok()) return version.status();
  SMIMEA_RETURN_IF_ERROR(detail::check_schema_version(path, *version, kSchemaVersion));
  const std::string pragmas = "PRAGMA foreign_keys=ON; PRAGMA cache_size=-" +
                              std::to_string(options.cache_kib) +
                              "; PRAGMA mmap_size=" + std::to_string(options.mmap_bytes) + ";" +
                              (options.read_only ? " PRAGMA query_only=ON;" : "");
  SMIMEA_RETURN_IF_ERROR(exec(h, pragmas.c_str(), path + ": configure connection"));
  auto impl = std::make_unique<SqliteStore::Impl>();
  impl->db = std::move(db).value();
  impl->options = options;
  impl->path = path;
  return std::unique_ptr<Store>(new SqliteStore(std::move(impl)));
}

Status SqliteStore::find_records(std::int64_t zone_id, const OwnerHash& owner, OwnerRecords* out) {
  Statement& s = impl_->find_records;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(),
                "SELECT usage, selector, matching_type, ttl, data FROM records "
                "WHERE zone_id = ?1 AND owner = ?2 AND not_after >= ?3 ORDER BY id"));
  s.bind(1, zone_id);
  s.bind_blob(2, owner.data(), owner.size());
  s.bind(3, detail::served_since(impl_->options));
  // Certificates that give an owner the same record (the same RDATA) publish it once, the
  // first by id. An owner has one or a few rows: comparing each with the rows before it costs
  // less than SQL's correlated NOT EXISTS (a second index search per row), which list_zone
  // keeps.
  out->clear();
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    const RecordParams params{static_cast<Usage>(s.int64(0)), static_cast<Selector>(s.int64(1)),
                              static_cast<MatchingType>(s.int64(2))};
    const std::uint8_t* data = s.blob(4);
    const std::size_t size = s.bytes(4);
    const bool repeated =
        std::any_of(out->records.begin(), out->records.end(), [&](const OwnerRecords::Record& r) {
          return r.params == params && r.size == size &&
                 (size == 0 || std::memcmp(out->data.data() + r.offset, data, size) == 0);
        });
    if (repeated) continue;
    out->records.push_back(
        {params, static_cast<std::uint32_t>(s.int64(3)), out->data.size(), size});
    out->data.insert(out->data.end(), data, data + size);
  }
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("lookup");
  return Status();
}

Result<bool> SqliteStore::data_changed() {
  Statement& s = impl_->data_version_stmt;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), "PRAGMA data_version"));
  if (s.step() != SQLITE_ROW) return impl_->error("data_version");
  const std::int64_t v = s.int64(0);
  s.reset();
  const bool changed = v != impl_->data_version;
  impl_->data_version = v;
  return changed;
}

namespace {

// The columns read_zone() reads. has_records: from idx_records_zone_owner alone; when expired
// certificates are withdrawn, each row's not_after too (?9 is served_since()).
std::string zone_columns(const StoreOptions& options) {
  return std::string(
             "SELECT id, name, mode, serial, notified_serial, EXISTS (SELECT 1 FROM "
             "records r WHERE r.zone_id = z.id") +
         (options.withdraw_expired ? " AND r.not_after >= ?9" : "") +
         "), kind, case_sensitive, catalog_id FROM zones z";
}

Zone read_zone(const Statement& s) {
  Zone z;
  z.id = s.int64(0);
  z.name.assign(s.text(1));
  z.mode = parse_zone_mode(s.text(2)).value_or(ZoneMode::kAuthoritative);
  z.serial = static_cast<std::uint32_t>(s.int64(3));
  z.notified_serial = s.is_null(4) ? -1 : s.int64(4);
  z.has_records = s.int64(5) != 0;
  z.kind = parse_zone_kind(s.text(6)).value_or(ZoneKind::kMaster);
  z.case_sensitive = s.int64(7) != 0;
  z.catalog_id.assign(s.text(8));
  return z;
}

}  // namespace

Status SqliteStore::load_zones(std::vector<Zone>* zones) {
  Statement& s = impl_->load_zones;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), zone_columns(impl_->options) + " ORDER BY name"));
  if (impl_->options.withdraw_expired) s.bind(9, detail::served_since(impl_->options));
  std::vector<Zone> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_zone(s));
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("load zones");
  *zones = std::move(out);
  return Status();
}

Status SqliteStore::load_catalog(CatalogState* catalog) {
  Statement& s = impl_->load_catalog;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), "SELECT serial, notified_serial FROM catalog WHERE id = 0"));
  const int rc = s.step();
  if (rc != SQLITE_ROW) {
    s.reset();
    return rc == SQLITE_DONE ? Status::store_error(impl_->path, "the catalog row is missing")
                             : impl_->error("load catalog");
  }
  catalog->serial = static_cast<std::uint32_t>(s.int64(0));
  catalog->notified_serial = s.is_null(1) ? -1 : s.int64(1);
  s.reset();
  return Status();
}

Result<std::int64_t> SqliteStore::zone_table_version() {
  Statement& s = impl_->zone_table_version;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), "SELECT version FROM zone_table_version WHERE id = 0"));
  const int rc = s.step();
  if (rc != SQLITE_ROW) {
    s.reset();
    return rc == SQLITE_DONE ? Status::store_error(impl_->path, "the zone table version is missing")
                             : impl_->error("zone table version");
  }
  const std::int64_t version = s.int64(0);
  s.reset();
  return version;
}

const std::string& SqliteStore::path() const { return impl_->path; }

const StoreOptions& SqliteStore::options() const { return impl_->options; }

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

Result<std::unique_ptr<ZoneCursor>> SqliteStore::open_zone_cursor(std::int64_t zone_id) {
  if (impl_->cursor_open) return Status::conflict("list zone", "a zone listing is already open");
  Statement& s = impl_->list_zone;
  // (zone_id, owner) index order, rowid last: no sort, rows come as the index is walked.
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(),
                                   "SELECT owner, usage, selector, matching_type, ttl, data "
                                   "FROM records r WHERE zone_id = ?1 AND not_after >= ?2 AND "
                                   "NOT EXISTS (SELECT 1 FROM records d WHERE d.zone_id = ?1 AND "
                                   "d.owner = r.owner AND d.id < r.id AND d.not_after >= ?2 AND "
                                   "d.usage = r.usage AND d.selector = r.selector AND "
                                   "d.matching_type = r.matching_type AND d.data = r.data) "
                                   "ORDER BY owner, id"));
  s.bind(1, zone_id);
  s.bind(2, detail::served_since(impl_->options));
  return std::unique_ptr<ZoneCursor>(new SqliteZoneCursor(impl_->db.get(), s, impl_->cursor_open));
}

Status SqliteStore::list_zone(std::int64_t zone_id, RecordVisitor& visitor) {
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

Status SqliteStore::begin_read() {
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

bool SqliteStore::reading() const { return impl_->in_read; }

void SqliteStore::end_read() noexcept {
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

Status SqliteStore::zone_keys(std::int64_t zone_id, std::vector<DomainKey>* keys) {
  Statement s;
  return detail::read_domain_keys(impl_->db.get(), s, zone_id, keys);
}

Result<Zone> SqliteStore::find_zone(std::string_view name) {
  Statement& s = impl_->find_zone;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), zone_columns(impl_->options) + " WHERE name = ?1"));
  s.bind_text(1, name);
  if (impl_->options.withdraw_expired) s.bind(9, detail::served_since(impl_->options));
  const int rc = s.step();
  if (rc == SQLITE_DONE) {
    s.reset();
    return Status::not_found(std::string(name), "no such zone");
  }
  if (rc != SQLITE_ROW) return impl_->error("find zone");
  Zone z = read_zone(s);
  s.reset();
  return z;
}

Result<std::optional<std::string>> SqliteStore::mailbox_address(const Zone& zone,
                                                                std::string_view address) {
  Statement& s = impl_->mailbox_address;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(),
                                   "SELECT address FROM certificates WHERE address = ?1 COLLATE "
                                   "NOCASE AND zone_id = ?2 AND (?3 = 0 OR address = ?1) "
                                   "ORDER BY address != ?1, id LIMIT 1"));
  s.bind_text(1, address);
  s.bind(2, zone.id);
  s.bind(3, zone.case_sensitive ? 1 : 0);
  const int rc = s.step();
  std::optional<std::string> found;
  if (rc == SQLITE_ROW) found = std::string(s.text(0));
  s.reset();  // a statement kept prepared must not keep its read open
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return impl_->error("find mailbox of " + std::string(address));
  }
  return found;
}

namespace {

// The columns of a certificate row, as read_certificate() reads them.
constexpr std::string_view kCertificateColumns =
    "SELECT c.id, c.address, z.name, c.fingerprint, c.subject, c.issuer, c.serial, "
    "c.not_before, c.not_after, c.created_at, c.domain, c.changed_by FROM certificates c "
    "JOIN zones z ON z.id = c.zone_id";

CertInfo read_certificate(const Statement& certs) {
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
  info.changed_by.assign(certs.text(11));
  return info;
}

}  // namespace

Result<std::vector<CertInfo>> SqliteStore::certificates_expiring_before(std::int64_t before,
                                                                        std::string_view zone) {
  Statement certs;
  SMIMEA_RETURN_IF_ERROR(
      certs.prepare(impl_->db.get(), std::string(kCertificateColumns) +
                                         " WHERE c.not_after < ?1 AND (?2 = '' OR z.name = ?2) "
                                         "ORDER BY c.not_after, c.address"));
  certs.bind(1, before);
  certs.bind_text(2, zone);
  std::vector<CertInfo> out;
  int rc;
  while ((rc = certs.step()) == SQLITE_ROW) out.push_back(read_certificate(certs));
  if (rc != SQLITE_DONE) return impl_->error("list expiring certificates");
  return out;
}

Result<std::vector<CertInfo>> SqliteStore::list_certificates(
    std::string_view address, std::string_view zone,
    const std::optional<std::array<std::uint8_t, 32>>& fingerprint) {
  sqlite3* db = impl_->db.get();
  // Only the filters given: "(?1 = '' OR address = ?1)" would keep SQLite from using
  // idx_certificates_address, and listing one address would scan every certificate. With both,
  // the unary + keeps the planner on the address's few rows rather than the zone's many.
  std::string sql = std::string(kCertificateColumns) + " WHERE 1";
  // The mailbox: the address ignoring ASCII letter case (NOCASE), exactly in a case-sensitive
  // zone.
  if (!address.empty()) {
    sql += " AND c.address = ?1 COLLATE NOCASE AND (z.case_sensitive = 0 OR c.address = ?1)";
  }
  if (!zone.empty()) sql += address.empty() ? " AND z.name = ?2" : " AND +z.name = ?2";
  if (fingerprint) sql += " AND c.fingerprint = ?3";
  sql += " ORDER BY c.address, c.id";
  Statement certs;
  SMIMEA_RETURN_IF_ERROR(certs.prepare(db, sql));
  if (!address.empty()) certs.bind_text(1, address);
  if (!zone.empty()) certs.bind_text(2, zone);
  if (fingerprint) certs.bind_blob(3, fingerprint->data(), fingerprint->size());
  Statement recs;
  std::vector<CertInfo> out;
  int rc;
  while ((rc = certs.step()) == SQLITE_ROW) {
    CertInfo info = read_certificate(certs);
    const std::string domain(certs.text(10));
    SMIMEA_RETURN_IF_ERROR(recs.prepare(db,
                                        "SELECT owner, usage, selector, matching_type, ttl, "
                                        "data FROM records WHERE certificate_id = ?1 "
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
      r.data.assign(recs.blob(5), recs.blob(5) + recs.bytes(5));
      info.records.push_back(std::move(r));
    }
    if (rrc != SQLITE_DONE) return impl_->error("list records");
    out.push_back(std::move(info));
  }
  if (rc != SQLITE_DONE) return impl_->error("list certificates");
  return out;
}

Status SqliteStore::integrity_check() {
  Statement s;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), "PRAGMA integrity_check"));
  if (s.step() != SQLITE_ROW) return impl_->error("integrity check");
  const std::string result(s.text(0));
  if (result != "ok") return Status::store_error(impl_->path, "integrity check: " + result);
  return Status();
}

Result<std::vector<ZoneStats>> SqliteStore::zone_stats(std::int64_t now) {
  // One pass over certificates (idx_certificates_zone), grouped by zone; zones without
  // certificates too. Run for a scrape, not per query: prepared each time.
  Statement st;
  SMIMEA_RETURN_IF_ERROR(st.prepare(
      impl_->db.get(),
      "SELECT z.name, z.mode, z.serial, z.updated_at, count(c.id), "
      "coalesce(sum(c.not_after < ?1), 0), "
      "coalesce(sum(c.not_after >= ?1 AND c.not_after < ?1 + 7 * 86400), 0), "
      "coalesce(sum(c.not_after >= ?1 AND c.not_after < ?1 + 30 * 86400), 0) "
      "FROM zones z LEFT JOIN certificates c ON c.zone_id = z.id GROUP BY z.id ORDER BY z.name"));
  st.bind(1, now);
  std::vector<ZoneStats> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    ZoneStats z;
    z.zone.assign(st.text(0));
    z.mode = st.text(1) == "overlay" ? ZoneMode::kOverlay : ZoneMode::kAuthoritative;
    z.serial = static_cast<std::uint32_t>(st.int64(2));
    z.updated_at = st.int64(3);
    z.certificates = static_cast<std::uint64_t>(st.int64(4));
    z.expired = static_cast<std::uint64_t>(st.int64(5));
    z.within_7_days = static_cast<std::uint64_t>(st.int64(6));
    z.within_30_days = static_cast<std::uint64_t>(st.int64(7));
    out.push_back(std::move(z));
  }
  if (rc != SQLITE_DONE) return impl_->error("zone statistics");
  return out;
}

}  // namespace smimea
