// Answering PowerDNS's questions from the store: the logic shared by every adapter (the remote
// backend over a pipe or unix socket, and the native module).
//
// An Answerer owns one Store connection and answers from the process's shared zone table
// (zone_table.h), checked when the database changed (PRAGMA data_version), never per query.
// lookup() costs, after warm-up: no heap allocation, at most one indexed SELECT (owner names
// only), zone-level names answered from memory.
// One Answerer per connection/thread, as PowerDNS uses one backend instance per thread. Its
// reads between checks for changes share the store's held snapshot (Store::hold_read).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "smimea/config.h"
#include "smimea/lookup_metrics.h"
#include "smimea/status.h"
#include "smimea/store.h"
#include "smimea/zone_table.h"

namespace smimea {

// PTR and TXT are the catalog zone's (catalog.cc).
enum class QType : std::uint8_t { kAny, kSoa, kNs, kSmimea, kDs, kPtr, kTxt, kOther };

// "ANY", "SOA", "NS", "SMIMEA", "DS", "PTR", "TXT" (any case); anything else is kOther.
QType parse_qtype(std::string_view text);

// The mnemonic of qtype ("SOA", ...); "" for kOther.
std::string_view qtype_name(QType qtype);

// Receives the records of an answer. qname is the name as the caller spelled it (lookup) or
// the owner name (list); all string_views are valid only during the call.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // SOA, NS, DS, and the catalog's PTR and TXT records (qtype is one of those); content is in
  // presentation format.
  // auth is false only for the NS of a delegation point in the parent zone (pdns's "auth"
  // flag: not authoritative data).
  virtual void add_text(std::string_view qname, QType qtype, std::uint32_t ttl,
                        std::int64_t zone_id, std::string_view content, bool auth) = 0;
  virtual void add_smimea(std::string_view qname, std::int64_t zone_id, const RecordView& rr) = 0;
  // An empty non-terminal marker (pdns's "ENT" pseudo-type).
  virtual void add_ent(std::string_view qname, std::int64_t zone_id) = 0;
};

class Answerer;

// A zone's records for a transfer (pdns's list), pulled one at a time: the SOA and the NS set
// (authoritative zones), then every SMIMEA record in owner order. All of it comes from one
// read transaction of the Answerer's store, opened by Answerer::open_listing() and ended when
// the ZoneListing is destroyed: smimea-ctl's commits meanwhile are not seen, and memory does
// not grow with the zone. Until then the Answerer and its Store see that snapshot too, and
// cannot open another listing. Not thread-safe; must not outlive its Answerer.
class ZoneListing {
 public:
  ~ZoneListing();
  ZoneListing(const ZoneListing&) = delete;
  ZoneListing& operator=(const ZoneListing&) = delete;

  // Sends the next record to sink; false (and nothing sent) at the end.
  Result<bool> next(RecordSink& sink);
  const ZoneEntry& zone() const { return zone_; }

 private:
  friend class Answerer;
  struct TextRecord {
    std::string name;
    QType qtype;
    std::uint32_t ttl;
    std::string content;
    bool auth;
  };
  // cursor may be null (the catalog: texts only).
  ZoneListing(Store& store, ZoneEntry zone, std::vector<TextRecord> texts,
              std::unique_ptr<ZoneCursor> cursor);

  Store& store_;
  ZoneEntry zone_;
  // SOA, NS and, for a zone that delegates its _smimecert child, the NS and DS at the cut;
  // then the cursor's records.
  std::vector<TextRecord> texts_;
  std::unique_ptr<ZoneCursor> cursor_;
  std::size_t position_ = 0;  // into texts_, then the cursor
  std::string name_;          // the current owner name
};

class Answerer {
 public:
  // Both must outlive the Answerer. The Store's connection is the Answerer's alone.
  Answerer(Store& store, const Config& config);
  ~Answerer();
  Answerer(const Answerer&) = delete;
  Answerer& operator=(const Answerer&) = delete;

  // Takes the store's current zone table if the database changed since the last check: in the
  // snapshot of an open listing, if there is one, else in a new one.
  Status refresh();

  // How long a check for changes, and the read snapshot it was made in, serve the lookups
  // that follow it (see lookup()).
  static constexpr std::chrono::milliseconds kRecheckInterval{1};

  // Answers (qname, qtype) into sink. A name that is not ours gives no records and OK. A
  // store error fails the lookup only for a name at or below a zone of the last table read:
  // pdns asks every backend about every name, also from its NOTIFY and secondary thread,
  // where an error stops pdns, and a name that is not ours stays not ours.
  // zone_id is the zone pdns asks in (-1: not known; the zone is chosen by name). An
  // authoritative zone of ours answers only in its own context; in its parent's context the
  // apex of a delegated _smimecert.<domain> zone is the delegation point: NS (not
  // authoritative) and the DS computed from the child's keys (none while it is unsigned).
  // Every lookup is counted in the process's lookup_counters() (lookup_metrics.h): by its
  // result, or as a store error.
  Status lookup(std::string_view qname, QType qtype, RecordSink& sink, std::int64_t zone_id = -1);

  // Whether a name (any case, trailing dot optional) is at or below a zone of the table: a
  // failure to read the store about it is an error rather than "not ours".
  bool knows(std::string_view name) const;

  // Every record of the zone (AXFR order: SOA first; the closing SOA is pdns's job).
  // NotFound if there is no such zone.
  Status list(std::int64_t zone_id, RecordSink& sink);

  // The same records, to be pulled one by one (see ZoneListing). Reloads the zone table in
  // the listing's snapshot first. NotFound if there is no such zone.
  Result<std::unique_ptr<ZoneListing>> open_listing(std::int64_t zone_id);

  // What pdns's list call (AXFR-out) gets: the listing of zone_name (any case, trailing dot
  // optional), chosen by name in the listing's snapshot, never by pdns's domain id (another
  // backend's, or reused after a zone was removed). NotFound unless it is one of our
  // authoritative zones: overlay zones belong to the backend that owns them.
  Result<std::unique_ptr<ZoneListing>> open_transfer(std::string_view zone_name);

  // The zone table as of the last refresh(), sorted by name. Entries and pointers to them are
  // valid until the next call that may reload it (refresh, lookup, list, open_listing,
  // open_transfer): read what you need from an entry before making one.
  const std::vector<ZoneEntry>& zones() const;
  const ZoneEntry* find_zone(std::string_view name) const;  // any case, trailing dot optional
  const ZoneEntry* find_zone_by_id(std::int64_t id) const;

  // Lookups served since construction (for statistics).
  std::uint64_t lookups() const { return lookups_; }

  // The rows of the last owner lookup, for pdns's repeat of it (see lookup()).
  struct SavedOwner {
    bool valid = false;
    std::int64_t zone_id = -1;
    OwnerHash hash{};
    std::chrono::steady_clock::time_point at{};
    OwnerRecords rows;
  };

 private:
  const ZoneEntry* find_zone_lower(std::string_view lower_name) const;
  bool checked_recently() const;
  Status check_for_changes();  // in the read transaction the caller holds
  Status renew();              // a new read snapshot held for lookups, checked for changes
  Status renew_for(std::string_view lower_name);  // renew(); errors only for names of ours
  bool is_ours(std::string_view lower_name) const;
  bool below_a_zone(std::string_view lower_name) const;  // strictly below a zone of the table
  // lookup() without the lock and the counting; *result says what it answered.
  Status answer(std::string_view qname, QType qtype, RecordSink& sink, std::int64_t zone_id,
                LookupResult* result);
  // What a name that is neither a zone of the table nor an existing name in one answers.
  LookupResult absent(std::string_view lower_name) const {
    return below_a_zone(lower_name) ? LookupResult::kNxdomain : LookupResult::kNotOurs;
  }
  Status find_owner(std::string_view qname, std::int64_t zone_id, const OwnerHash& hash,
                    RecordSink& sink, LookupResult* result);
  // A name at or below the catalog's apex: the catalog's answer. lower_name is below
  // or at catalog.zone.name.
  void answer_catalog(std::string_view qname, std::string_view lower_name, QType qtype,
                      const ZoneEntry& catalog, RecordSink& sink, LookupResult* result) const;
  // The catalog entry if lower_name is strictly below it, else nullptr.
  const ZoneEntry* catalog_above(std::string_view lower_name) const;
  // The catalog's records for a transfer: SOA, NS, version TXT, then the members' PTRs.
  void catalog_texts(const ZoneEntry& catalog, std::vector<ZoneListing::TextRecord>* texts) const;
  // The DS set of a delegated child zone, computed from its keys once per commit seen.
  Result<const std::vector<std::string>*> delegation_ds_of(const ZoneEntry& child);
  Status answer_cut(std::string_view qname, QType qtype, const ZoneEntry& parent,
                    const ZoneEntry& child, RecordSink& sink, LookupResult* result);
  // Opens a listing of the zone pick() chooses from the table reloaded in the listing's
  // snapshot (nullptr: NotFound, described by what).
  template <typename Pick>
  Result<std::unique_ptr<ZoneListing>> open_listing_of(const std::string& what, Pick pick);

  Store& store_;
  const Config& config_;
  const std::string table_key_;  // ZoneTable::key
  // The table of the last check for changes; loaded_ is false until one succeeded and after
  // one failed (a table is kept to tell which names are ours).
  std::shared_ptr<const ZoneTable> table_;
  bool loaded_ = false;
  std::chrono::steady_clock::time_point last_check_{};  // of the last check for changes
  SavedOwner saved_owner_;
  // By child zone id; emptied by every commit seen (a child's keys are not in the table).
  std::unordered_map<std::int64_t, std::vector<std::string>> ds_cache_;
  std::uint64_t lookups_ = 0;
  LookupCounterSet counters_;  // the process's lookup_counters() sum every Answerer's
};

}  // namespace smimea
