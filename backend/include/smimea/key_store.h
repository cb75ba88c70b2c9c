// DNSSEC keys and domain metadata of the zones in the store, for PowerDNS's key, metadata and
// transaction calls (pdnsutil secure-zone, set-nsec3, add-zone-key, ...; the signer reads the
// keys), plus the one read plain NSEC needs (the owners around a name).
//
// An interface the core owns; its SQLite implementation is in backend/src/store/.
// A KeyStore has its own SQLite connection, separate from the query path's read-only Store:
// it is opened on first use, read-write (SQLite falls back to read-only when the file is
// write-protected; writes then fail with its "readonly database" error).
// Reads and writes share that connection so that reads inside pdns's transaction see its
// writes. Every write bumps the zone's SOA serial in the same SQLite transaction, so caches and
// secondaries pick up the new DNSKEY/NSEC3PARAM set.
//
// Zones are named as pdns names them (any case, trailing dot optional) and must be in the
// zones table in authoritative mode: NotFound for a zone the store does not have, Conflict for
// an overlay zone (its keys and metadata belong to the backend that owns it).
//
// It also keeps the other things pdns writes: the serial last announced with NOTIFY
// (setNotified) and the TSIG keys (pdnsutil generate-tsig-key, import-tsig-key, ...).
//
// Key material (DomainKey::content, TsigKey::secret) is secret: it is never put into a Status
// message.
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

// A TSIG key (RFC 8945) as pdns stores it. Names are kept lower-case without the trailing dot.
struct TsigKey {
  std::string name;       // "xfr-key"
  std::string algorithm;  // "hmac-sha256"
  std::string secret;     // base64 (secret)
};

// kind -> values, as PowerDNS's getAllDomainMetadata returns it.
using DomainMetadata = std::map<std::string, std::vector<std::string>>;

struct KeyStoreOptions {
  // How long a call waits for a store locked by another writer. Default: 1000 ms, under
  // pdns's remote-backend timeout (2000 ms).
  std::uint32_t busy_timeout_ms = 1000;
  // The NSEC neighbours leave out the records of expired certificates (expired-certificates:
  // withdraw), like the query path's Store.
  bool withdraw_expired = false;
};

class KeyStore {
 public:
  // Opens nothing yet; path must name a store created by smimea-ctl init. The store's
  // SQLite implementation (backend/src/store/).
  static std::unique_ptr<KeyStore> create(std::string path, KeyStoreOptions options = {});
  virtual ~KeyStore() = default;  // an open transaction is rolled back
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // --- keys ---

  // The zone's keys, ordered by id.
  virtual Result<std::vector<DomainKey>> get_domain_keys(std::string_view zone) = 0;
  // Stores key (its id is ignored) and returns the new id (>= 1).
  virtual Result<std::int64_t> add_domain_key(std::string_view zone, const DomainKey& key) = 0;
  // NotFound if the zone has no key with this id.
  virtual Status remove_domain_key(std::string_view zone, std::int64_t id) = 0;
  virtual Status set_key_active(std::string_view zone, std::int64_t id, bool active) = 0;
  virtual Status set_key_published(std::string_view zone, std::int64_t id, bool published) = 0;

  // --- domain metadata ---

  virtual Result<DomainMetadata> get_all_domain_metadata(std::string_view zone) = 0;
  // The values of one kind, in the order they were set; empty if the kind is not set.
  virtual Result<std::vector<std::string>> get_domain_metadata(std::string_view zone,
                                                               std::string_view kind) = 0;
  // Replaces every value of kind; an empty list deletes the kind. Atomic.
  virtual Status set_domain_metadata(std::string_view zone, std::string_view kind,
                                     const std::vector<std::string>& values) = 0;

  // --- zone transfer ---

  // Records that pdns sent NOTIFY for serial `serial` of zone zone_id (setNotified): the zone
  // is no longer in getUpdatedMasters until its serial moves again. The serial itself does not
  // move. NotFound if there is no such zone.
  virtual Status set_notified(std::int64_t zone_id, std::uint32_t serial) = 0;

  // --- expired certificates (expired-certificates: withdraw) ---

  // Moves the serial of each authoritative zone that holds a certificate whose notAfter
  // passed since the zone's serial last moved (before `now`, at or after the last move): what
  // a withdrawing server serves changed then. Safe to run from several processes: a zone
  // moves once per expiry. Returns the earliest notAfter at or after `now` (none: no
  // certificate expires later), after which it should run again.
  virtual Result<std::optional<std::int64_t>> move_serials_of_expired(std::int64_t now) = 0;

  // TSIG keys, by name (any case, trailing dot optional). NotFound if there is no such key.
  virtual Result<TsigKey> get_tsig_key(std::string_view name) = 0;
  // Every key, ordered by name.
  virtual Result<std::vector<TsigKey>> get_tsig_keys() = 0;
  // Adds the key or replaces the one with the same name.
  virtual Status set_tsig_key(const TsigKey& key) = 0;
  // Deleting a key that does not exist is not an error.
  virtual Status delete_tsig_key(std::string_view name) = 0;

  // --- transactions (pdns's startTransaction / commitTransaction / abortTransaction) ---

  // Takes the store's write lock until commit() or rollback(). Conflict if one is open.
  virtual Status begin() = 0;
  virtual Status commit() = 0;
  virtual Status rollback() = 0;
  virtual bool in_transaction() const = 0;

  // --- plain NSEC ---

  // The owners of zone zone_id around bound: two probes of the (zone_id, owner) index.
  virtual Result<OwnerNeighbours> owner_neighbours(std::int64_t zone_id,
                                                   const OwnerHash& bound) = 0;
  // The zone's smallest owner, if any.
  virtual Result<std::optional<OwnerHash>> first_owner(std::int64_t zone_id) = 0;

 protected:
  KeyStore() = default;
};

// One zone's owners read through a KeyStore, as nsec_neighbours() wants them.
class KeyStoreOwnerReader : public OwnerReader {
 public:
  KeyStoreOwnerReader(KeyStore& keys, std::int64_t zone_id) : keys_(keys), zone_id_(zone_id) {}
  Result<OwnerNeighbours> neighbours(const OwnerHash& bound) override {
    return keys_.owner_neighbours(zone_id_, bound);
  }
  Result<std::optional<OwnerHash>> first() override { return keys_.first_owner(zone_id_); }

 private:
  KeyStore& keys_;
  std::int64_t zone_id_;
};

}  // namespace smimea
