// Thin RAII over the SQLite C API, for the store's own files (backend/src/store/): nothing
// outside that folder sees sqlite3.h.
#pragma once

#include <sqlite3.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/key_store.h"
#include "smimea/status.h"

namespace smimea::detail {

// "what: <sqlite message> (extended code N)".
inline Status sqlite_error(sqlite3* db, std::string_view what) {
  const int code = sqlite3_extended_errcode(db);
  std::string why = sqlite3_errmsg(db);
  why += " (" + std::to_string(code) + ")";
  return Status::store_error(what, why);
}

// Why the first read of a store failed, asked while the failing statement is still alive
// (finalizing it clears the error). In WAL mode that read opens, or creates, <store>-wal and
// -shm beside the store: a user that cannot is told so, not that the file is no database.
inline Status first_read_error(sqlite3* db, const std::string& path) {
  const int code = sqlite3_extended_errcode(db) & 0xff;  // the primary code
  if (code != SQLITE_CANTOPEN && code != SQLITE_READONLY) {
    return sqlite_error(db, path + ": not a readable SQLite database");
  }
  const int err = sqlite3_system_errno(db);
  std::string why = "cannot open it with its -wal and -shm files";
  if (err != 0) why += std::string(": ") + std::strerror(err);
  if (err == EMFILE || err == ENFILE) {
    why += " (raise the open-file limit: ulimit -n, or LimitNOFILE= in a systemd unit)";
  } else {
    why +=
        " (this user needs write access to the store's directory: see README, \"Protecting "
        "the store\")";
  }
  return Status::store_error(path, why + " [" + sqlite3_errmsg(db) + "]");
}

// A prepared statement, reset before each use. Not copyable.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Prepares sql on first use; later calls only reset and clear bindings.
  Status prepare(sqlite3* db, std::string_view sql) {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
      return Status();
    }
    db_ = db;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &stmt_, nullptr) != SQLITE_OK) {
      return sqlite_error(db, "prepare");
    }
    return Status();
  }

  sqlite3_stmt* get() const { return stmt_; }

  void bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  // The blob and text are not copied: they must outlive the step() calls.
  void bind_blob(int index, const void* data, std::size_t size) {
    sqlite3_bind_blob(stmt_, index, data, static_cast<int>(size), SQLITE_STATIC);
  }
  void bind_text(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  void bind_null(int index) { sqlite3_bind_null(stmt_, index); }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  void reset() { sqlite3_reset(stmt_); }

  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string_view text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string_view(reinterpret_cast<const char*>(p),
                                static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string_view();
  }
  const std::uint8_t* blob(int col) const {
    return static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  }
  std::size_t bytes(int col) const {
    return static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col));
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// The store's schema version (PRAGMA user_version): the first read of a new connection.
inline Result<std::int64_t> read_user_version(sqlite3* db, const std::string& path) {
  Statement s;
  SMIMEA_RETURN_IF_ERROR(s.prepare(db, "PRAGMA user_version").with_context(path));
  if (s.step() != SQLITE_ROW) return first_read_error(db, path);
  return s.int64(0);
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

// Opens a connection with extended result codes; SQLite's message on failure.
inline Result<DbPtr> open_db(const std::string& path, int flags) {
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

// Runs one or more statements without results.
inline Status exec(sqlite3* db, const char* sql, std::string_view what) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return sqlite_error(db, what);
  }
  return Status();
}

// The first column of the first row of sql.
inline Result<std::int64_t> query_int(sqlite3* db, const char* sql, std::string_view what) {
  Statement s;
  SMIMEA_RETURN_IF_ERROR(s.prepare(db, sql).with_context(what));
  const int rc = s.step();
  if (rc != SQLITE_ROW) return sqlite_error(db, what);
  return s.int64(0);
}

// Refuses a store whose schema version is not `wanted`: not a store yet, older (migrate it),
// or newer. A newer store was migrated by a newer smimea-ctl, and a program still running
// the old version (pdns_server keeps the native module it loaded, and the smimea-backend it
// started) must be restarted.
inline Status check_schema_version(const std::string& path, std::int64_t version,
                                   std::int64_t wanted) {
  const std::string at = "store is at schema version " + std::to_string(version);
  if (version == 0)
    return Status::store_error(path, "not a smimea store (create it with smimea-ctl init)");
  if (version < wanted) {
    return Status::store_error(
        path, at + ": run smimea-ctl init to migrate it to " + std::to_string(wanted));
  }
  if (version > wanted) {
    return Status::store_error(
        path, at + ", newer than this program's " + std::to_string(wanted) +
                  ": upgrade smimea, or restart what still runs the old version (pdns_server "
                  "with the native module or the pipe connector, smimea-backend)");
  }
  return Status();
}

// The DNSSEC keys of a zone, by id, with s (prepared here on first use): for pdns's
// getDomainKeys (KeyStore) and for the DS a parent publishes (Store::zone_keys).
inline Status read_domain_keys(sqlite3* db, Statement& s, std::int64_t zone_id,
                               std::vector<DomainKey>* keys) {
  SMIMEA_RETURN_IF_ERROR(s.prepare(db,
                                   "SELECT id, flags, active, published, content FROM "
                                   "domain_keys WHERE zone_id = ?1 ORDER BY id"));
  s.bind(1, zone_id);
  std::vector<DomainKey> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    DomainKey k;
    k.id = s.int64(0);
    k.flags = static_cast<std::uint32_t>(s.int64(1));
    k.active = s.int64(2) != 0;
    k.published = s.int64(3) != 0;
    k.content.assign(s.text(4));
    out.push_back(std::move(k));
  }
  s.reset();
  if (rc != SQLITE_DONE) return sqlite_error(db, "read keys of zone " + std::to_string(zone_id));
  *keys = std::move(out);
  return Status();
}

}  // namespace smimea::detail
