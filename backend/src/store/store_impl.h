// SqliteStore and its Impl, shared by the store's read side (sqlite_store.cc) and write side
// (store_write.cc). Private to backend/src/store/.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "smimea/store.h"
#include "sqlite_util.h"

namespace smimea {

namespace detail {
inline std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }
// The smallest records.not_after that is served now: the current time when expired
// certificates are withdrawn (a certificate is valid through its notAfter second, RFC 5280
// section 4.1.2.5), otherwise any.
inline std::int64_t served_since(const StoreOptions& options) {
  return options.withdraw_expired ? now_seconds() : INT64_MIN;
}
}  // namespace detail

// The SQLite implementation of Store (the interface the core owns: smimea/store.h).
class SqliteStore final : public Store {
 public:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  ~SqliteStore() override;

  Status find_records(std::int64_t zone_id, const OwnerHash& owner, OwnerRecords* out) override;
  Result<bool> data_changed() override;
  Status load_zones(std::vector<Zone>* zones) override;
  Status load_catalog(CatalogState* catalog) override;
  Result<std::int64_t> zone_table_version() override;
  const std::string& path() const override;
  const StoreOptions& options() const override;
  Status list_zone(std::int64_t zone_id, RecordVisitor& visitor) override;
  Result<std::unique_ptr<ZoneCursor>> open_zone_cursor(std::int64_t zone_id) override;
  Status begin_read() override;
  void end_read() noexcept override;
  bool reading() const override;
  Status hold_read(std::chrono::steady_clock::duration max_age) override;
  void end_held_read() noexcept override;
  std::mutex& held_read_mutex() override;
  void release_if_stale() override;
  Status zone_keys(std::int64_t zone_id, std::vector<DomainKey>* keys) override;
  Result<Zone> find_zone(std::string_view name) override;
  Result<std::optional<std::string>> mailbox_address(const Zone& zone,
                                                     std::string_view address) override;
  Result<std::vector<CertInfo>> certificates_expiring_before(std::int64_t before,
                                                             std::string_view zone) override;
  Result<std::vector<CertInfo>> list_certificates(
      std::string_view address, std::string_view zone,
      const std::optional<std::array<std::uint8_t, 32>>& fingerprint) override;
  Status integrity_check() override;
  Status begin() override;
  Status commit() override;
  void rollback() noexcept override;
  Status savepoint() override;
  Status release_savepoint() override;
  void rollback_to_savepoint() noexcept override;
  Result<Zone> add_zone(std::string_view name, ZoneMode mode, ZoneKind kind, int* moved,
                        bool case_sensitive) override;
  Result<Zone> set_zone_case(std::string_view name, bool case_sensitive) override;
  Result<Zone> set_zone_kind(std::string_view name, ZoneKind kind) override;
  Result<int> remove_zone(std::string_view name, bool force, int* moved) override;
  Result<AddResult> add_certificate(const Zone& zone, const NewCertificate& cert) override;
  Result<Token> add_token(const Token& token) override;
  Result<std::vector<Token>> list_tokens() override;
  Status remove_token(std::string_view name) override;
  Result<Token> find_token(const std::array<std::uint8_t, 32>& secret_sha256) override;
  Result<int> remove_certificates(
      std::string_view address,
      const std::optional<std::array<std::uint8_t, 32>>& fingerprint) override;
  Result<std::vector<ZoneStats>> zone_stats(std::int64_t now) override;

 private:
  Status read_scopes(Token* token);
  std::unique_ptr<Impl> impl_;
};

struct SqliteStore::Impl {
  detail::DbPtr db;
  StoreOptions options;
  std::string path;
  std::int64_t data_version = -1;
  std::set<std::int64_t> touched_zones;
  std::set<std::int64_t> touched_before_savepoint;
  // An authoritative zone was added or removed: commit() moves the catalog's serial.
  bool catalog_touched = false;
  bool catalog_touched_before_savepoint = false;
  // Hot path statements, prepared once per connection.
  detail::Statement find_records;
  detail::Statement data_version_stmt;
  detail::Statement begin_read_stmt, end_read_stmt;
  // Everything else, prepared on first use.
  detail::Statement load_zones, list_zone, find_zone, add_zone, cert_by_fp, insert_cert, rr_exists,
      rrset_size, insert_record, bump_serial, set_kind, set_rrset_ttl, set_changed_by,
      mailbox_address, find_token, token_scopes, load_catalog, bump_catalog, zone_table_version;
  bool cursor_open = false;  // list_zone is held by a ZoneCursor
  bool in_read = false;      // inside begin_read()
  // The snapshot of lookups (hold_read), between its user's thread and the releasing thread.
  std::mutex held_mutex;
  bool holding = false;
  bool registered = false;  // with the releasing thread
  std::chrono::steady_clock::time_point held_since{};
  std::chrono::steady_clock::duration held_max_age{};

  Status error(std::string_view what) const { return detail::sqlite_error(db.get(), what); }
};

}  // namespace smimea
