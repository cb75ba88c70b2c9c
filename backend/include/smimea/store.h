// The certificate store: zones, certificates and the SMIMEA records computed from them at
// insert time. The core owns this interface; its one implementation, an SQLite database
// (schema/schema.sql), lives in backend/src/store/ and is reached only through open().
//
// A Store is one connection. It is not thread-safe: give each thread its own (SQLite allows
// many readers next to one writer in WAL mode). smimea-ctl opens it read-write and wraps each
// command in one transaction; smimea-backend opens it with query_only, so it can never write.
// Every failure comes back as a Status naming the operation, SQLite's message and its
// extended code.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/cert.h"
#include "smimea/config.h"
#include "smimea/key_store.h"
#include "smimea/owner_name.h"
#include "smimea/status.h"
#include "smimea/types.h"

namespace smimea {

// Version of schema/schema.sql; migrations/<N>_*.sql bring older stores up to it.
inline constexpr int kSchemaVersion = 7;

enum class ZoneMode : std::uint8_t {
  kAuthoritative = 0,  // we serve SOA, NS, the _smimecert ENT and the SMIMEA records
  kOverlay = 1,        // another pdns backend owns the zone; we serve only _smimecert names
};
std::string_view zone_mode_name(ZoneMode mode);
std::optional<ZoneMode> parse_zone_mode(std::string_view name);

// What pdns is told about an authoritative zone (domaininfo "kind"). With primary=yes, pdns
// sends NOTIFY to the secondaries of master zones when their serial moves; native zones are
// replicated by other means (or by the secondaries' SOA refresh). Both can be transferred.
enum class ZoneKind : std::uint8_t { kMaster = 0, kNative = 1 };
std::string_view zone_kind_name(ZoneKind kind);  // "master", "native"
std::optional<ZoneKind> parse_zone_kind(std::string_view name);

struct Zone {
  std::int64_t id = -1;
  std::string name;  // lower-case A-labels, no trailing dot
  ZoneMode mode = ZoneMode::kAuthoritative;
  ZoneKind kind = ZoneKind::kMaster;
  std::uint32_t serial = 0;
  std::int64_t notified_serial = -1;  // -1: never notified
  bool has_records = false;           // at least one SMIMEA record
  // Mailbox case (README, "Mailbox case"). false (the default): local-parts that differ only
  // in ASCII letter case are one mailbox, stored under its first spelling and published at
  // the exact and the lower-cased owner names. true: compared exactly, no lower-cased name.
  bool case_sensitive = false;
  // The zone's unique id in the catalog zone (RFC 9432 section 4.1): 16 lower-case hex digits,
  // random, made when the zone is added; a zone removed and added again gets a new one.
  std::string catalog_id;
};

// The catalog zone's serial (`catalog:` in the configuration): it moves when an
// authoritative zone is added or removed, in the same transaction.
struct CatalogState {
  std::uint32_t serial = 0;
  std::int64_t notified_serial = -1;  // -1: never notified
};

// The id pdns knows the catalog zone by: never a rowid of the zones table, whose ids start
// at 1 (SQLite gives a rowid of 0 only to an explicit insert of it, which the store never does).
inline constexpr std::int64_t kCatalogZoneId = 0;

// One SMIMEA record as stored. `data` points into the statement's row: valid only during the
// visitor call.
struct RecordView {
  const OwnerHash* owner = nullptr;
  RecordParams params;
  std::uint32_t ttl = 0;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  // Set by Answerer::lookup when it answers pdns's repeat of the previous owner lookup from
  // that lookup's rows: this answer is the previous one, record for record and in the same
  // order, so an adapter may reuse what it built for it (see Answerer::find_owner).
  bool repeat = false;
};

// The records of one owner as find_records() gives them: each RDATA once, in id order, their
// bytes in one buffer. Owned by the caller and reused, so a warm lookup allocates nothing.
struct OwnerRecords {
  struct Record {
    RecordParams params;
    std::uint32_t ttl = 0;
    std::size_t offset = 0;  // into data
    std::size_t size = 0;
  };
  std::vector<Record> records;
  std::vector<std::uint8_t> data;

  void clear() {
    records.clear();
    data.clear();
  }
  // Record i, owned by owner, as a view into this object (valid until it changes).
  RecordView view(std::size_t i, const OwnerHash* owner) const {
    const Record& r = records[i];
    RecordView v;
    v.owner = owner;
    v.params = r.params;
    v.ttl = r.ttl;
    v.data = data.data() + r.offset;
    v.size = r.size;
    return v;
  }
};

class RecordVisitor {
 public:
  virtual ~RecordVisitor() = default;
  virtual void visit(const RecordView& record) = 0;
};

// A zone's records pulled one at a time, in list_zone()'s order, from the read snapshot of the
// Store that opened it. It holds that Store's list statement: at most one cursor per Store, and
// the Store must outlive it. Destroying it ends the statement (and the read, unless the Store
// is inside begin_read()).
class ZoneCursor {
 public:
  virtual ~ZoneCursor() = default;
  // The next record into *record (valid until the next call), or false at the end.
  virtual Result<bool> next(RecordView* record) = 0;
};

// A certificate as smimea-ctl adds it: everything computed before the transaction starts.
struct NewCertificate {
  std::string address;  // as printed: MailAddress::to_string()
  std::string domain;   // A-label mail domain
  Bytes der;
  std::array<std::uint8_t, 32> fingerprint{};
  std::string subject;
  std::string issuer;
  std::string serial;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  // Whether the records' TTL was asked for (--ttl). An RRset has one TTL (RFC 2181 section
  // 5.2): an explicit TTL becomes the TTL of the whole RRset at each owner; otherwise new
  // records take the TTL their RRset has already, if it has one.
  bool ttl_explicit = true;
  std::string changed_by;  // who adds or changes it (audit): "cli:<user>", "token:<name>"
  struct Record {
    OwnerHash owner{};
    RecordParams params;
    std::uint32_t ttl = 0;
    Bytes data;
  };
  std::vector<Record> records;
};

// The rows smimea-ctl adds for cert at addr: a record for each of params at each owner of the
// address (the local-part's, and the lower-cased local-part's with lowercase_variant, RFC 8162
// section 3).
NewCertificate make_new_certificate(const Certificate& cert, const MailAddress& addr,
                                    const std::vector<RecordParams>& params, std::uint32_t ttl,
                                    bool lowercase_variant);

struct AddResult {
  std::string zone;         // the zone the records went into
  int records_added = 0;    // new records
  int records_updated = 0;  // records whose TTL changed (this certificate's or its RRsets')
  bool moved = false;       // the certificate was in another zone and moved into this one
  // The TTL each of the certificate's records has now, in the order of NewCertificate::records
  // (a new record may take its RRset's).
  std::vector<std::uint32_t> ttls;
  bool changed() const { return records_added > 0 || records_updated > 0 || moved; }
};

struct CertRecordInfo {
  std::string owner_name;  // fully qualified
  RecordParams params;
  std::uint32_t ttl = 0;
  Bytes data;  // the association data
};

// One zone's figures for monitoring (Store::zone_stats).
struct ZoneStats {
  std::string zone;
  ZoneMode mode = ZoneMode::kAuthoritative;
  std::uint32_t serial = 0;
  std::int64_t updated_at = 0;       // the last change, seconds since the epoch
  std::uint64_t certificates = 0;    // all of the zone's certificates
  std::uint64_t expired = 0;         // notAfter before now
  std::uint64_t within_7_days = 0;   // not expired, notAfter within 7 days of now
  std::uint64_t within_30_days = 0;  // not expired, notAfter within 30 days (the 7 included)
};

struct CertInfo {
  std::int64_t id = 0;
  std::string address;
  std::string zone;
  std::array<std::uint8_t, 32> fingerprint{};
  std::string subject;
  std::string issuer;
  std::string serial;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::int64_t created_at = 0;
  std::string changed_by;  // who made the last change ("" before schema version 5)
  std::vector<CertRecordInfo> records;
};

struct StoreOptions {
  bool read_only = false;  // query_only: the backend's mode
  std::uint32_t busy_timeout_ms = 5000;
  std::uint32_t cache_kib = 65536;
  // Bytes of the file read through mmap (PRAGMA mmap_size); 0 reads with pread. SQLite caps
  // it at its compile-time maximum (2 GiB in Debian's build). Mapped pages are the kernel's
  // page cache, shared by every connection (each pdns thread has one), and count in the
  // process's resident size. Default: the whole store, up to that cap: lookups then cost no
  // system call at any store size, where pread through a 64 MiB page cache per connection
  // made a 1.8 GB store (1M owners) 18% slower than a 180 MB one.
  std::uint64_t mmap_bytes = std::uint64_t{1} << 40;
  std::size_t max_rrset_bytes = 32768;
  // Leave out the records of certificates past their notAfter (expired-certificates:
  // withdraw) in lookups, zone listings and a zone's has_records.
  bool withdraw_expired = false;
};

// What a connection is for. Each use takes its options from the configuration in one place
// (store_options), so every program opens the store the same way for the same purpose.
enum class StoreUse : std::uint8_t {
  kServer,     // pdns's reads (both pdns adapters): read-only, busy-timeout-ms, cache-kib
  kWriter,     // changes (smimea-ctl, the API): one transaction each, bounded memory
  kInspector,  // a command that only reads (check-config, export)
};
StoreOptions store_options(const Config& config, StoreUse use);

// An API token as stored: never its secret, only the secret's SHA2-256.
struct Token {
  std::int64_t id = 0;
  std::string name;
  std::array<std::uint8_t, 32> secret_sha256{};
  bool read_only = false;
  bool admin = false;
  std::optional<std::int64_t> expires_at;  // seconds since the epoch; none: never
  std::vector<std::string> zones;          // scopes: zone names (A-labels)
  std::vector<std::string> addresses;      // mailboxes, as printed
  std::vector<std::string> networks;       // allowed source networks (CIDR); none: any
  std::int64_t created_at = 0;
  std::string created_by;
};

class Store {
 public:
  // Creates the database if it does not exist, or migrates it to kSchemaVersion. Refuses a
  // store from a newer version. Returns the version the store was at before (0 if new).
  // What a migration changed that an operator should know (mailboxes merged, TTLs made one per
  // RRset) is appended to *notes, one sentence each.
  static Result<int> init(const std::string& path, std::vector<std::string>* notes = nullptr);

  // Warnings, one sentence each, for the store's files (database, -wal, -shm) that other
  // users may access: the store holds DNSSEC private keys and TSIG secrets. init() takes that
  // access away.
  static std::vector<std::string> access_warnings(const std::string& path);

  // Opens an existing store at kSchemaVersion. A missing file, another file type, an older
  // schema ("run smimea-ctl init") or a newer one are StoreErrors with a clear message.
  static Result<std::unique_ptr<Store>> open(const std::string& path, const StoreOptions& options);

  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- read side (hot path first) ---

  // The records of owner `owner` in zone `zone_id` into *out (cleared first): one indexed
  // read, no allocation once out has grown to an owner's size.
  virtual Status find_records(std::int64_t zone_id, const OwnerHash& owner, OwnerRecords* out) = 0;

  // True if another connection committed since the last call (PRAGMA data_version). Cheap.
  virtual Result<bool> data_changed() = 0;

  // All zones, ordered by name, with has_records filled in.
  virtual Status load_zones(std::vector<Zone>* zones) = 0;
  // The catalog's serial, read with the zones (same snapshot when in one read transaction).
  virtual Status load_catalog(CatalogState* catalog) = 0;
  // The zone-table version (zone_table.h): a random value that the store's triggers replace
  // whenever a row of zones or catalog changes. One indexed read.
  virtual Result<std::int64_t> zone_table_version() = 0;
  // What the store was opened as.
  virtual const std::string& path() const = 0;
  virtual const StoreOptions& options() const = 0;

  // Visits every record of a zone, ordered by owner, from one consistent snapshot.
  virtual Status list_zone(std::int64_t zone_id, RecordVisitor& visitor) = 0;

  // The same records as list_zone(), pulled one by one (a zone transfer of any size without
  // holding it in memory). See ZoneCursor.
  virtual Result<std::unique_ptr<ZoneCursor>> open_zone_cursor(std::int64_t zone_id) = 0;

  // A read transaction: every read until end_read() sees one snapshot of the store, whatever
  // smimea-ctl commits meanwhile (a zone transfer reads its zone table and its records in
  // one). Conflict if one is open. A read-only (query_only) Store may use it.
  virtual Status begin_read() = 0;
  virtual void end_read() noexcept = 0;
  // Inside begin_read() (a listing's, or the snapshot lookups hold).
  virtual bool reading() const = 0;

  // The snapshot lookups share. Beginning and ending a read transaction (file locks on the
  // -shm file, an fstat) costs more than the indexed read, so lookups keep one for a while:
  // hold_read() ends the held snapshot, if any, and begins another. Lookups use it with
  // held_read_mutex() locked. The store ends a held snapshot by itself once it is older than
  // max_age and nobody holds that mutex (checked every kReleaseInterval by one thread per
  // process), so that an idle server does not keep SQLite's checkpoints from emptying the WAL.
  static constexpr std::chrono::milliseconds kReleaseInterval{100};
  virtual Status hold_read(std::chrono::steady_clock::duration max_age) = 0;
  virtual void end_held_read() noexcept = 0;
  virtual std::mutex& held_read_mutex() = 0;
  // Ends the held snapshot if it is older than its max_age and the mutex is free: what the
  // releasing thread does each round. Thread-safe.
  virtual void release_if_stale() = 0;

  // The DNSSEC keys of a zone, by id (secret: see key_store.h): for the DS its parent zone
  // publishes. Works on a read-only Store.
  virtual Status zone_keys(std::int64_t zone_id, std::vector<DomainKey>* keys) = 0;

  // Zone by exact (normalised) name; NotFound if absent.
  virtual Result<Zone> find_zone(std::string_view name) = 0;

  // The spelling under which the mailbox of `address` (as printed) is stored in `zone`: the
  // address itself, another letter case of it (unless the zone is case-sensitive), or
  // nullopt if the mailbox has no certificate there.
  virtual Result<std::optional<std::string>> mailbox_address(const Zone& zone,
                                                             std::string_view address) = 0;

  // Certificates filtered by mailbox (an address as printed, compared as its zone compares
  // local-parts), zone name and SHA2-256 fingerprint; any may be empty.
  // The certificates whose notAfter is before `before` (seconds since the epoch), in zone
  // `zone` (a name; empty: every zone), soonest first, without their records: one range of
  // idx_certificates_not_after (smimea-ctl check-expiry).
  virtual Result<std::vector<CertInfo>> certificates_expiring_before(std::int64_t before,
                                                                     std::string_view zone) = 0;
  virtual Result<std::vector<CertInfo>> list_certificates(
      std::string_view address, std::string_view zone,
      const std::optional<std::array<std::uint8_t, 32>>& fingerprint = std::nullopt) = 0;

  virtual Status integrity_check() = 0;

  // --- write side: smimea-ctl only; wrap each command in begin()/commit() ---

  virtual Status begin() = 0;
  // Bumps the serial of every zone changed since begin(), then commits.
  virtual Status commit() = 0;
  virtual void rollback() noexcept = 0;
  // A savepoint inside the transaction: the changes after it can be undone alone
  // (rollback_to_savepoint) or kept (release_savepoint). Not nested.
  virtual Status savepoint() = 0;
  virtual Status release_savepoint() = 0;
  virtual void rollback_to_savepoint() noexcept = 0;

  // Adds a zone. A delegated _smimecert.<domain> zone takes over the certificates of
  // <domain> that its parent zone <domain> held, with their records (queries for their
  // owners go to the most specific zone from now on); *moved, if given, gets their number.
  // Refuses (Conflict) to move certificates between zones that compare local-parts
  // differently (case_sensitive).
  virtual Result<Zone> add_zone(std::string_view name, ZoneMode mode,
                                ZoneKind kind = ZoneKind::kMaster, int* moved = nullptr,
                                bool case_sensitive = false) = 0;
  // Sets whether a zone compares local-parts exactly. Refuses (Conflict) a zone that holds
  // certificates: their mailboxes and owner names were decided under the other rule.
  virtual Result<Zone> set_zone_case(std::string_view name, bool case_sensitive) = 0;
  // Sets a zone's kind; NotFound if there is no such zone. The serial does not move.
  virtual Result<Zone> set_zone_kind(std::string_view name, ZoneKind kind) = 0;
  // Refuses (Conflict) a zone that still has certificates unless force is set; with force the
  // certificates go too. Returns the number of certificates removed. A _smimecert.<domain>
  // zone gives its certificates back to <domain> if the store has that zone (*moved, if
  // given, gets their number), so nothing is removed but the zone.
  virtual Result<int> remove_zone(std::string_view name, bool force, int* moved = nullptr) = 0;

  // Stores a certificate and its records in `zone`. Adding what is already there changes
  // nothing but the TTL of its records, if another is asked for, and the zone the certificate
  // is in (see AddResult). Refuses (Conflict) records that would make an owner's RRset larger
  // than max_rrset_bytes, and, in a case-insensitive zone, a mailbox stored under another
  // spelling (add it under mailbox_address()).
  virtual Result<AddResult> add_certificate(const Zone& zone, const NewCertificate& cert) = 0;

  // API tokens. add_token refuses (Conflict) a name or a secret hash already stored.
  virtual Result<Token> add_token(const Token& token) = 0;
  virtual Result<std::vector<Token>> list_tokens() = 0;    // ordered by name
  virtual Status remove_token(std::string_view name) = 0;  // NotFound if there is none
  // The token whose secret has this SHA2-256; NotFound if none.
  virtual Result<Token> find_token(const std::array<std::uint8_t, 32>& secret_sha256) = 0;

  // Removes the certificates of the mailbox of `address` (all, or the one with this SHA2-256
  // fingerprint) with their records: the address compared ignoring ASCII letter case, or
  // exactly in a case-sensitive zone. Returns how many were removed.
  virtual Result<int> remove_certificates(
      std::string_view address, const std::optional<std::array<std::uint8_t, 32>>& fingerprint) = 0;

  // Every zone's figures as of now (seconds since the epoch), ordered by name: one grouped
  // read of zones and certificates.
  virtual Result<std::vector<ZoneStats>> zone_stats(std::int64_t now) = 0;

 protected:
  Store() = default;
};

}  // namespace smimea
