#include "smimea/answer.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "smimea/dnskey.h"
#include "smimea/hex.h"
#include "smimea/owner_name.h"

namespace smimea {
namespace {

constexpr std::size_t kMaxQnameBytes = 255;

// Lower-cases an ASCII name into buf without allocating; returns the view without the
// trailing dot, or false if it cannot be a DNS name.
bool to_lower_name(std::string_view in, char (&buf)[kMaxQnameBytes + 1], std::string_view* out) {
  in = strip_trailing_dot(in);
  if (in.size() > kMaxQnameBytes) return false;
  ascii_lower_copy(in.data(), in.size(), buf);
  *out = std::string_view(buf, in.size());
  return true;
}

}  // namespace

QType parse_qtype(std::string_view text) {
  if (iequals(text, "ANY")) return QType::kAny;
  if (iequals(text, "SMIMEA")) return QType::kSmimea;
  if (iequals(text, "SOA")) return QType::kSoa;
  if (iequals(text, "NS")) return QType::kNs;
  if (iequals(text, "DS")) return QType::kDs;
  if (iequals(text, "PTR")) return QType::kPtr;
  if (iequals(text, "TXT")) return QType::kTxt;
  return QType::kOther;
}

std::string_view qtype_name(QType qtype) {
  switch (qtype) {
    case QType::kAny:
      return "ANY";
    case QType::kSoa:
      return "SOA";
    case QType::kNs:
      return "NS";
    case QType::kSmimea:
      return "SMIMEA";
    case QType::kDs:
      return "DS";
    case QType::kPtr:
      return "PTR";
    case QType::kTxt:
      return "TXT";
    case QType::kOther:
      break;
  }
  return "";
}

Answerer::Answerer(Store& store, const Config& config)
    : store_(store), config_(config), table_key_(ZoneTable::key(store, config)) {}

Answerer::~Answerer() {
  std::lock_guard<std::mutex> lock(store_.held_read_mutex());
  store_.end_held_read();
}

Status Answerer::refresh() {
  std::lock_guard<std::mutex> lock(store_.held_read_mutex());
  store_.end_held_read();  // a held snapshot may be older than kRecheckInterval
  // In an open listing's snapshot, else in a read transaction of its own, ended before
  // returning (the caller may begin another).
  if (store_.reading()) return check_for_changes();
  SMIMEA_RETURN_IF_ERROR(store_.begin_read());
  const Status s = check_for_changes();
  store_.end_read();
  return s;
}

Status Answerer::renew() {
  // The snapshot is taken by data_version's read, after last_check_ is set: lookups within
  // kRecheckInterval of last_check_ see every commit made before it.
  SMIMEA_RETURN_IF_ERROR(store_.hold_read(kRecheckInterval));
  const Status s = check_for_changes();
  if (!s.ok()) store_.end_held_read();
  return s;
}

Status Answerer::renew_for(std::string_view lower_name) {
  const Status s = renew();
  if (s.ok() || is_ours(lower_name)) return s;
  counters_.count_store_error();  // not ours: answered as such, but counted
  return Status();
}

bool Answerer::is_ours(std::string_view lower_name) const {
  return find_zone_lower(lower_name) != nullptr || below_a_zone(lower_name);
}

bool Answerer::knows(std::string_view name) const {
  char buf[kMaxQnameBytes + 1];
  std::string_view lower;
  return to_lower_name(name, buf, &lower) && is_ours(lower);
}

Status Answerer::check_for_changes() {
  const auto now = std::chrono::steady_clock::now();
  auto changed = store_.data_changed();
  if (!changed.ok()) return changed.status();
  last_check_ = now;
  saved_owner_.valid = false;
  if (!*changed && loaded_) return Status();
  // data_changed() has already taken note of the new version: if the table cannot be read,
  // only loaded_ = false makes the next call try again instead of keeping the old table.
  loaded_ = false;
  ds_cache_.clear();
  // Always in a read transaction (renew's, or a listing's): the table's version and its
  // contents come from one snapshot.
  auto table = ZoneTable::current(store_, config_, table_key_, table_);
  if (!table.ok()) return table.status();
  table_ = std::move(table).value();
  loaded_ = true;
  return Status();
}

const std::vector<ZoneEntry>& Answerer::zones() const {
  static const std::vector<ZoneEntry> kNone;
  return table_ == nullptr ? kNone : table_->zones();
}

bool Answerer::below_a_zone(std::string_view lower_name) const {
  for (std::size_t dot = lower_name.find('.'); dot != std::string_view::npos;
       dot = lower_name.find('.', dot + 1)) {
    if (find_zone_lower(lower_name.substr(dot + 1)) != nullptr) return true;
  }
  return false;
}

bool Answerer::checked_recently() const {
  return std::chrono::steady_clock::now() - last_check_ < kRecheckInterval;
}

const ZoneEntry* Answerer::find_zone_lower(std::string_view lower_name) const {
  return table_ == nullptr ? nullptr : table_->find(lower_name);
}

const ZoneEntry* Answerer::find_zone(std::string_view name) const {
  char buf[kMaxQnameBytes + 1];
  std::string_view lower;
  if (!to_lower_name(name, buf, &lower)) return nullptr;
  return find_zone_lower(lower);
}

const ZoneEntry* Answerer::find_zone_by_id(std::int64_t id) const {
  return table_ == nullptr ? nullptr : table_->find_by_id(id);
}

Result<const std::vector<std::string>*> Answerer::delegation_ds_of(const ZoneEntry& child) {
  auto cached = ds_cache_.find(child.zone.id);
  if (cached != ds_cache_.end()) return &cached->second;
  std::vector<DomainKey> keys;
  SMIMEA_RETURN_IF_ERROR(store_.zone_keys(child.zone.id, &keys));
  // Keys that cannot be used give no DS: an insecure delegation rather than a bogus one.
  auto ds = delegation_ds(child.zone.name, keys, nullptr);
  for (DomainKey& k : keys) OPENSSL_cleanse(k.content.data(), k.content.size());
  if (!ds.ok()) return ds.status();
  return &ds_cache_.emplace(child.zone.id, std::move(ds).value()).first->second;
}

Status Answerer::answer_cut(std::string_view qname, QType qtype, const ZoneEntry& parent,
                            const ZoneEntry& child, RecordSink& sink, LookupResult* result) {
  *result = LookupResult::kNodata;
  // Asked in the parent's context (pdns sends DS questions for a zone apex to the parent, and
  // builds the parent's NSEC/NSEC3 at the cut from this answer): a delegation point. No SOA:
  // it would put the SOA bit in the parent's denial and hide the DS.
  if (qtype == QType::kAny || qtype == QType::kNs) {
    for (const std::string& ns : config_.nameservers) {
      sink.add_text(qname, QType::kNs, config_.ns_ttl, parent.zone.id, ns, /*auth=*/false);
      *result = LookupResult::kAnswer;
    }
  }
  if (qtype == QType::kAny || qtype == QType::kDs) {
    auto ds = delegation_ds_of(child);
    if (!ds.ok()) return ds.status();
    for (const std::string& d : **ds) {
      sink.add_text(qname, QType::kDs, config_.ns_ttl, parent.zone.id, d, /*auth=*/true);
      *result = LookupResult::kAnswer;
    }
  }
  return Status();
}

Status Answerer::lookup(std::string_view qname, QType qtype, RecordSink& sink,
                        std::int64_t zone_id) {
  // Never contended but by the store's releasing thread.
  std::lock_guard<std::mutex> lock(store_.held_read_mutex());
  ++lookups_;
  // Counted once here, for every adapter: a plain add to this Answerer's set (lookup_metrics.h).
  LookupResult result = LookupResult::kNotOurs;
  Status s = answer(qname, qtype, sink, zone_id, &result);
  if (s.ok()) {
    counters_.count_lookup(result);
  } else {
    counters_.count_store_error();
  }
  return s;
}

// Inlined into lookup(), its only caller: as a call of its own it cost about 50 instructions
// per lookup (callgrind), a third of what an apex lookup costs.
__attribute__((always_inline)) inline Status Answerer::answer(std::string_view qname, QType qtype,
                                                              RecordSink& sink,
                                                              std::int64_t zone_id,
                                                              LookupResult* result) {
  *result = LookupResult::kNotOurs;
  char buf[kMaxQnameBytes + 1];
  std::string_view name;
  if (!to_lower_name(qname, buf, &name)) return Status();

  // Owner names: <56 hex>._smimecert.<domain>. One indexed read.
  OwnerHash hash;
  std::string_view rest;  // "_smimecert.<domain>"
  if (parse_owner_qname(name, &hash, &rest)) {
    if (!loaded_ || !checked_recently()) SMIMEA_RETURN_IF_ERROR(renew_for(name));
    // The most specific zone wins: a delegated _smimecert.<domain> before <domain>.
    const ZoneEntry* zone = find_zone_lower(rest);
    if (zone == nullptr && rest.size() > kSmimecertLabel.size() + 1) {
      zone = find_zone_lower(rest.substr(kSmimecertLabel.size() + 1));
      if (zone != nullptr && starts_with_smimecert(zone->zone.name)) zone = nullptr;
    }
    if (zone == nullptr) {
      *result = absent(name);
      return Status();
    }
    // Asked in another zone's context (the parent above a delegation, another backend's zone):
    // below the cut, or not this zone's name there. Overlay zones are asked with the id of the
    // backend that owns them.
    if (zone_id >= 0 && zone_id != zone->zone.id && zone->zone.mode == ZoneMode::kAuthoritative) {
      return Status();
    }
    // SMIMEA is the only type at an owner name: other types are not read.
    if (qtype != QType::kAny && qtype != QType::kSmimea) {
      *result = LookupResult::kNodata;
      return Status();
    }
    return find_owner(qname, zone->zone.id, hash, sink, result);
  }

  // Zone-level names are answered from memory. A change to the store is noticed here, with
  // PRAGMA data_version in a new read transaction (file locks and an fstat: as costly as the
  // owner's read). pdns starts every question with a lookup of the zone apex; that check and
  // its snapshot also serve the lookups of the next kRecheckInterval (1 ms): the rest of the
  // question (the owner, the _smimecert ENT, the owner's repeat, the wildcards of a denial)
  // and, under load, the next questions of this thread. So a commit is seen by every question
  // that starts 1 ms after it. A name outside every zone of the table (perhaps a new zone)
  // always checks.
  const ZoneEntry* zone = loaded_ ? find_zone_lower(name) : nullptr;
  bool below = false;  // with zone == nullptr: below a zone of the table (an ENT or nxdomain)
  if (!loaded_ || !checked_recently() || (zone == nullptr && !(below = below_a_zone(name)))) {
    SMIMEA_RETURN_IF_ERROR(renew_for(name));
    zone = find_zone_lower(name);
    below = zone == nullptr && below_a_zone(name);
  }
  if (zone != nullptr) {
    if (zone->zone.mode != ZoneMode::kAuthoritative) return Status();
    if (zone->catalog) {
      if (zone_id < 0 || zone_id == zone->zone.id) {
        answer_catalog(qname, name, qtype, *zone, sink, result);
      }
      return Status();
    }
    if (zone_id >= 0 && zone_id != zone->zone.id) {
      if (zone->parent >= 0 && table_->at(zone->parent).zone.id == zone_id) {
        return answer_cut(qname, qtype, table_->at(zone->parent), *zone, sink, result);
      }
      return Status();
    }
    *result = LookupResult::kNodata;
    if (qtype == QType::kAny || qtype == QType::kSoa) {
      sink.add_text(qname, QType::kSoa, config_.soa.ttl, zone->zone.id, zone->soa_content, true);
      *result = LookupResult::kAnswer;
    }
    if (qtype == QType::kAny || qtype == QType::kNs) {
      for (const std::string& ns : config_.nameservers) {
        sink.add_text(qname, QType::kNs, config_.ns_ttl, zone->zone.id, ns, true);
        *result = LookupResult::kAnswer;
      }
    }
    return Status();
  }
  if (const ZoneEntry* catalog = below ? catalog_above(name) : nullptr; catalog != nullptr) {
    if (zone_id < 0 || zone_id == catalog->zone.id) {
      answer_catalog(qname, name, qtype, *catalog, sink, result);
    }
    return Status();
  }
  // _smimecert.<zone> is an empty non-terminal when the zone has records: NOERROR/NODATA,
  // never NXDOMAIN, or RFC 8020 resolvers would deny every name below it.
  // Counted as nodata whatever the type asked: the name exists, without records.
  if (starts_with_smimecert(name)) {
    const ZoneEntry* parent = find_zone_lower(name.substr(kSmimecertLabel.size() + 1));
    if (parent != nullptr && parent->zone.has_records &&
        !starts_with_smimecert(parent->zone.name)) {
      if (zone_id >= 0 && zone_id != parent->zone.id) return Status();  // not ours there
      if (qtype == QType::kAny) sink.add_ent(qname, parent->zone.id);
      *result = LookupResult::kNodata;
      return Status();
    }
  }
  *result = below ? LookupResult::kNxdomain : LookupResult::kNotOurs;
  return Status();
}

Status Answerer::find_owner(std::string_view qname, std::int64_t zone_id, const OwnerHash& hash,
                            RecordSink& sink, LookupResult* result) {
  // pdns asks for the owner twice per question when its query cache is off (its referral
  // check, then the answer), with only zone-level lookups between. The repeat is answered
  // once from the first one's rows, if no check for changes came between (refresh() drops
  // them) and it comes within kRecheckInterval of the read. The rows are read once, into
  // saved.rows, and the sink gets views into them.
  SavedOwner& saved = saved_owner_;
  const auto now = std::chrono::steady_clock::now();
  const bool repeat = saved.valid && saved.zone_id == zone_id && saved.hash == hash &&
                      now - saved.at < kRecheckInterval;
  saved.valid = false;
  if (!repeat) {
    SMIMEA_RETURN_IF_ERROR(store_.find_records(zone_id, hash, &saved.rows));
    // One more clock read (vDSO, no system call) for the read's time.
    counters_.count_store_read(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - now)
            .count()));
    saved.valid = true;
    saved.zone_id = zone_id;
    saved.hash = hash;
    saved.at = now;
  }
  *result = saved.rows.records.empty() ? LookupResult::kNxdomain : LookupResult::kAnswer;
  for (std::size_t i = 0; i < saved.rows.records.size(); ++i) {
    RecordView view = saved.rows.view(i, &saved.hash);
    view.repeat = repeat;
    sink.add_smimea(qname, zone_id, view);
  }
  return Status();
}

Status Answerer::list(std::int64_t zone_id, RecordSink& sink) {
  auto listing = open_listing(zone_id);
  if (!listing.ok()) return listing.status();
  for (;;) {
    auto more = (*listing)->next(sink);
    if (!more.ok()) return more.status();
    if (!*more) return Status();
  }
}

Result<std::unique_ptr<ZoneListing>> Answerer::open_listing(std::int64_t zone_id) {
  return open_listing_of("zone id " + std::to_string(zone_id),
                         [this, zone_id] { return find_zone_by_id(zone_id); });
}

Result<std::unique_ptr<ZoneListing>> Answerer::open_transfer(std::string_view zone_name) {
  // A copy: the caller's view may point into the table that the snapshot's reload replaces.
  const std::string name(strip_trailing_dot(zone_name));
  return open_listing_of(name, [this, &name]() -> const ZoneEntry* {
    const ZoneEntry* zone = find_zone(name);
    return zone != nullptr && zone->zone.mode == ZoneMode::kAuthoritative ? zone : nullptr;
  });
}

template <typename Pick>
Result<std::unique_ptr<ZoneListing>> Answerer::open_listing_of(const std::string& what, Pick pick) {
  std::lock_guard<std::mutex> lock(store_.held_read_mutex());
  store_.end_held_read();
  SMIMEA_RETURN_IF_ERROR(store_.begin_read());
  // The zone table and the records come from the same snapshot, so a listing never pairs an
  // old SOA serial with newer records.
  Status s = check_for_changes();
  const ZoneEntry* zone = s.ok() ? pick() : nullptr;
  if (s.ok() && zone == nullptr) s = Status::not_found(what, "no such zone");
  if (!s.ok()) {
    store_.end_read();
    return s;
  }
  // Overlay zones have no SOA or NS of ours. A zone that delegates its _smimecert child lists
  // the NS and DS at the cut (a secondary of the parent alone then refers, instead of denying
  // every owner); the child's records are the child's.
  std::vector<ZoneListing::TextRecord> texts;
  if (zone->catalog) {
    catalog_texts(*zone, &texts);
    return std::unique_ptr<ZoneListing>(new ZoneListing(store_, *zone, std::move(texts), nullptr));
  }
  if (zone->zone.mode == ZoneMode::kAuthoritative) {
    texts.push_back({zone->fqdn, QType::kSoa, config_.soa.ttl, zone->soa_content, true});
    for (const std::string& ns : config_.nameservers) {
      texts.push_back({zone->fqdn, QType::kNs, config_.ns_ttl, ns, true});
    }
  }
  if (zone->child >= 0) {
    const ZoneEntry& child = table_->at(zone->child);
    for (const std::string& ns : config_.nameservers) {
      texts.push_back({child.fqdn, QType::kNs, config_.ns_ttl, ns, false});
    }
    auto ds = delegation_ds_of(child);
    if (!ds.ok()) {
      store_.end_read();
      return ds.status();
    }
    for (const std::string& d : **ds) {
      texts.push_back({child.fqdn, QType::kDs, config_.ns_ttl, d, true});
    }
  }
  auto cursor = store_.open_zone_cursor(zone->zone.id);
  if (!cursor.ok()) {
    store_.end_read();
    return cursor.status();
  }
  return std::unique_ptr<ZoneListing>(
      new ZoneListing(store_, *zone, std::move(texts), std::move(cursor).value()));
}

ZoneListing::ZoneListing(Store& store, ZoneEntry zone, std::vector<TextRecord> texts,
                         std::unique_ptr<ZoneCursor> cursor)
    : store_(store), zone_(std::move(zone)), texts_(std::move(texts)), cursor_(std::move(cursor)) {}

ZoneListing::~ZoneListing() {
  cursor_.reset();  // the statement first, then the transaction it reads in
  store_.end_read();
}

Result<bool> ZoneListing::next(RecordSink& sink) {
  const std::int64_t id = zone_.zone.id;
  if (position_ < texts_.size()) {
    const TextRecord& t = texts_[position_++];
    sink.add_text(t.name, t.qtype, t.ttl, id, t.content, t.auth);
    return true;
  }
  if (cursor_ == nullptr) return false;
  RecordView rr;
  auto more = cursor_->next(&rr);
  if (!more.ok() || !*more) return more;
  name_.clear();
  append_hex(name_, rr.owner->data(), rr.owner->size());
  name_ += zone_.owner_suffix;
  sink.add_smimea(name_, id, rr);
  return true;
}

}  // namespace smimea
