// Store::init: creating a store, migrating an older one (schema/migrations/), and keeping the
// file away from other users.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "smimea/store.h"
#include "sqlite_util.h"
#include "store_schema.h"  // generated from schema/: kSchemaSql, kMigrations

namespace smimea {

using detail::exec;
using detail::open_db;
using detail::query_int;

namespace {

constexpr mode_t kOthers = S_IRWXO;

// The store's own files: the database and, while connections are open or after a crash, its
// write-ahead log and shared-memory index (SQLite gives them the database's mode).
std::vector<std::string> store_files(const std::string& path) {
  return {path, path + "-wal", path + "-shm"};
}

// Takes others' access away from the store's files; notes the files changed, or why not.
void restrict_store_files(const std::string& path, std::vector<std::string>* notes) {
  std::string changed, failed;
  for (const std::string& file : store_files(path)) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & kOthers) == 0) {
      continue;
    }
    std::string& list = ::chmod(file.c_str(), st.st_mode & 07770) == 0 ? changed : failed;
    list += (list.empty() ? "" : ", ") + file;
  }
  if (notes == nullptr) return;
  const std::string why = ": the store holds DNSSEC private keys and TSIG secrets";
  if (!changed.empty()) notes->push_back("removed other users' access to " + changed + why);
  if (!failed.empty()) {
    notes->push_back("could not remove other users' access to " + failed +
                     " (chmod o-rwx as their owner)" + why);
  }
}

// What migration `version` is about to change that its SQL cannot report: counted before it
// runs, in its transaction.
Status note_migration(sqlite3* db, int version, std::vector<std::string>* notes) {
  if (version != 4 || notes == nullptr) return Status();
  auto merged = query_int(db,
                          "SELECT count(*) FROM certificates c WHERE EXISTS (SELECT 1 FROM "
                          "certificates k WHERE k.address = c.address COLLATE NOCASE AND k.id < "
                          "c.id AND k.address != c.address)",
                          "count mailboxes to merge");
  if (!merged.ok()) return merged.status();
  if (*merged > 0) {
    notes->push_back(std::to_string(*merged) +
                     " certificate(s) stored under another letter case of an address joined "
                     "their mailbox's first spelling: letter case in local-parts is ignored "
                     "unless a zone is case-sensitive (README, \"Mailbox case\")");
  }
  auto rrsets = query_int(db,
                          "SELECT count(*) FROM (SELECT 1 FROM records GROUP BY zone_id, owner "
                          "HAVING count(DISTINCT ttl) > 1)",
                          "count RRsets with several TTLs");
  if (!rrsets.ok()) return rrsets.status();
  if (*rrsets > 0) {
    notes->push_back(std::to_string(*rrsets) +
                     " RRset(s) had records with different TTLs: each now has the TTL of its "
                     "most recently added record (RFC 2181 section 5.2); their zones' serials "
                     "moved");
  }
  return Status();
}

}  // namespace

Result<int> Store::init(const std::string& path, std::vector<std::string>* notes) {
  // SQLite makes new files 0644 whatever the umask. The store holds DNSSEC private keys and
  // TSIG secrets: create it 0660 minus the umask, never readable by others (umask 007 gives
  // its group write access, as the package sets it up); SQLite gives the -wal and -shm files
  // the store's mode. An empty file is an empty database.
  if (const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660); fd >= 0) {
    ::close(fd);
  }
  auto db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return db.status();
  sqlite3* h = db->get();
  sqlite3_busy_timeout(h, 5000);
  auto version = detail::read_user_version(h, path);
  if (!version.ok()) return version.status();
  const int before = static_cast<int>(*version);
  if (before > kSchemaVersion) {
    return Status::store_error(path, "store is at schema version " + std::to_string(before) +
                                         ", newer than this program's " +
                                         std::to_string(kSchemaVersion) + ": upgrade smimea");
  }
  restrict_store_files(path, notes);
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
    std::vector<std::string> found;
    Status s = note_migration(h, migration.version, &found);
    if (s.ok()) {
      s = exec(h, migration.sql,
               path + ": migration to version " + std::to_string(migration.version));
    }
    if (!s.ok()) {
      exec(h, "ROLLBACK", "rollback").ok();
      return s;
    }
    SMIMEA_RETURN_IF_ERROR(exec(h, "COMMIT", path + ": commit"));
    if (notes != nullptr) notes->insert(notes->end(), found.begin(), found.end());
  }
  return before;
}

std::vector<std::string> Store::access_warnings(const std::string& path) {
  std::vector<std::string> out;
  for (const std::string& file : store_files(path)) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && (st.st_mode & kOthers) != 0) {
      out.push_back(file + " is accessible to other users (mode " +
                    std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                    std::to_string(st.st_mode & 7) +
                    "), but the store holds DNSSEC private keys and TSIG secrets: chmod o-rwx "
                    "it, or run smimea-ctl init, which does");
    }
  }
  return out;
}

}  // namespace smimea
