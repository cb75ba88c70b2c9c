// Store::Impl, shared by the store's read side (sqlite_store.cc) and write side
// (store_write.cc). Private to backend/src/store/.
#pragma once

#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "smimea/store.h"
#include "sqlite_util.h"

namespace smimea {

namespace detail {
inline std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }
}  // namespace detail

struct Store::Impl {
  detail::DbPtr db;
  StoreOptions options;
  std::string path;
  std::int64_t data_version = -1;
  std::set<std::int64_t> touched_zones;
  // Hot path statements, prepared once per connection.
  detail::Statement find_records;
  detail::Statement data_version_stmt;
  detail::Statement begin_read_stmt, end_read_stmt;
  // Everything else, prepared on first use.
  detail::Statement load_zones, list_zone, find_zone, add_zone, cert_by_fp, insert_cert, rr_exists,
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

  Status error(std::string_view what) const { return detail::sqlite_error(db.get(), what); }
};

}  // namespace smimea
