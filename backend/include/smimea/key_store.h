// DNSSEC keys and domain metadata of the zones in the store, for PowerDNS's key, metadata and
// transaction calls (pdnsutil secure-zone, set-nsec3, add-zone-key, ...; the signer reads the
// keys), plus the one read plain NSEC needs (the owners around a name).
//
// A KeyStore has its own SQLite connection, separate from the query path's read-only Store:
// it is opened on first use, read-write when the file is writable (a backend that may only read
// the store still serves signed zones; writes then fail with SQLite's "readonly database").
// Reads and writes share that connection so that reads inside pdns's transaction see its
// writes. Every write bumps the zone's SOA serial in the same SQLite transaction, so caches and
// secondaries pick up the new DNSKEY/NSEC3PARAM set.
//
// Zones are named as pdns names them (any case, trailing dot optional) and must be in the
// zones table in authoritative mode: NotFound for a zone the store does not have, Conflict for
// an overlay zone (its keys and metadata belong to the backend that owns it).
//
// Key material (DomainKey::content) is secret: it is never put into a Status message.
// Not thread-safe: one KeyStore per backend instance, like Store.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/nsec.h"
#include "smimea/status.h"
#include "smimea/types.h"

namespace smimea {

struct DomainKey {
  std::int64_t id = 0;
  std::uint32_t flags = 0;  // 257: key-signing (SEP) or combined key, 256: zone-signing
  bool active = false;
  bool published = true;
  std::string content;  // "Private-key-format: v1.2\nAlgorithm: ..." (secret)
};

// kind -> values, as PowerDNS's getAllDomainMetadata returns it.
using DomainMetadata = std::map<std::string, std::vector<std::string>>;

struct KeyStoreOptions {
  // How long a call waits for a store locked by another writer. Default: 1000 ms, under
  // pdns's remote-backend timeout (2000 ms).
  std::uint32_t busy_timeout_ms = 1000;
};

class KeyStore {
 public:
  // Opens nothing yet; path must name a store created by smimea-ctl init.
  KeyStore(std::string path, KeyStoreOptions options = {});
  ~KeyStore();  // rolls back an open transaction
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // --- keys ---

  // The zone's keys, ordered by id.
  Result<std::vector<DomainKey>> get_domain_keys(std::string_view zone);
  // Stores key (its id is ignored) and returns the new id (>= 1).
  Result<std::int64_t> add_domain_key(std::string_view zone, const DomainKey& key);
  // NotFound if the zone has no key with this id.
  Status remove_domain_key(std::string_view zone, std::int64_t id);
  Status set_key_active(std::string_view zone, std::int64_t id, bool active);
  Status set_key_published(std::string_view zone, std::int64_t id, bool published);

  // --- domain metadata ---

  Result<DomainMetadata> get_all_domain_metadata(std::string_view zone);
  // The values of one kind, in the order they were set; empty if the kind is not set.
  Result<std::vector<std::string>> get_domain_metadata(std::string_view zone,
                                                       std::string_view kind);
  // Replaces every value of kind; an empty list deletes the kind. Atomic.
  Status set_domain_metadata(std::string_view zone, std::string_view kind,
                             const std::vector<std::string>& values);

  // --- transactions (pdns's startTransaction / commitTransaction / abortTransaction) ---

  // Takes the store's write lock until commit() or rollback(). Conflict if one is open.
  Status begin();
  Status commit();
  Status rollback();
  bool in_transaction() const { return in_transaction_; }

  // --- plain NSEC ---

  // The owners of zone zone_id around bound: two probes of the (zone_id, owner) index.
  Result<OwnerNeighbours> owner_neighbours(std::int64_t zone_id, const OwnerHash& bound);
  // The zone's smallest owner, if any.
  Result<std::optional<OwnerHash>> first_owner(std::int64_t zone_id);

 private:
  struct Impl;
  Status open();
  Result<std::int64_t> find_zone(std::string_view zone);
  Status write_begin();
  Status write_end(Status status);
  Status bump_serial(std::int64_t zone_id);

  std::string path_;
  KeyStoreOptions options_;
  std::unique_ptr<Impl> impl_;
  bool in_transaction_ = false;
  std::set<std::int64_t> touched_zones_;  // zones written in the open transaction
};

}  // namespace smimea
