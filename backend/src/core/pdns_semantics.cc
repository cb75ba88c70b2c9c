#include "smimea/pdns_semantics.h"

#include <algorithm>

#include "smimea/store.h"

namespace smimea {
namespace {

// "Not ours" is normal with several backends: NotFound (no such zone) or Conflict (an overlay
// zone, whose keys and metadata belong to the backend that owns it).
constexpr std::string_view kNeighboursCall = "getBeforeAndAfterNamesAbsolute";

bool not_ours(const Status& s) {
  return s.code() == Status::Code::kNotFound || s.code() == Status::Code::kConflict;
}

std::string what(std::string_view call, const Status& s) {
  std::string message(call);
  message += ": ";
  message += s.message();
  return message;
}

// A write pdns asked for: "no" with the reason for a zone that is not ours, a logged "no"
// otherwise.
template <class T>
Outcome<T> refused(std::string_view call, const Status& s) {
  if (not_ours(s)) return Outcome<T>::no_because(what(call, s));
  return Outcome<T>::no_after_error(what(call, s));
}

Outcome<Done> done_or_refused(std::string_view call, const Status& s) {
  if (s.ok()) return Done{};
  return refused<Done>(call, s);
}

// A name pdns names its zones with (any case, trailing dot optional), as the store keeps it.
std::string lower_no_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

KeyStoreOptions writer_options(const Config& config) {
  KeyStoreOptions options;
  // Writers (pdnsutil, smimea-ctl) hold the lock for milliseconds; stay under pdns's 2 s.
  options.busy_timeout_ms = std::max<std::uint32_t>(config.busy_timeout_ms, 1000);
  options.withdraw_expired = config.withdraw_expired;
  return options;
}

}  // namespace

Result<std::unique_ptr<PdnsCalls>> PdnsCalls::open(const Config& config) {
  auto store = Store::open(config.database, store_options(config, StoreUse::kServer));
  if (!store.ok()) return store.status();
  return std::unique_ptr<PdnsCalls>(new PdnsCalls(config, std::move(store).value()));
}

std::vector<std::string> PdnsCalls::access_warnings(const Config& config) {
  return Store::access_warnings(config.database);
}

PdnsCalls::PdnsCalls(const Config& config, std::unique_ptr<Store> store)
    : config_(config),
      store_(std::move(store)),
      answerer_(*store_, config),
      keys_(KeyStore::create(config.database, writer_options(config))) {}

PdnsCalls::~PdnsCalls() = default;

ZoneInfo PdnsCalls::zone_info(const ZoneEntry& zone) const {
  ZoneInfo info;
  info.id = zone.zone.id;
  info.fqdn = zone.fqdn;
  info.kind = zone.zone.kind;
  info.serial = zone.zone.serial;
  info.notified_serial =
      zone.zone.notified_serial < 0 ? 0 : static_cast<std::uint32_t>(zone.zone.notified_serial);
  return info;
}

Outcome<std::unique_ptr<ZoneListing>> PdnsCalls::list(std::string_view zone_name) {
  // One read transaction for the whole transfer, records pulled one at a time: a zone of any
  // size in bounded memory.
  auto listing = answerer_.open_transfer(zone_name);
  if (listing.ok()) return std::move(listing).value();
  if (listing.status().is_not_found()) return Outcome<std::unique_ptr<ZoneListing>>::no();
  return Outcome<std::unique_ptr<ZoneListing>>::failed("list " + std::string(zone_name) + ": " +
                                                       listing.status().message());
}

Outcome<std::vector<ZoneInfo>> PdnsCalls::all_domains() {
  if (Status s = answerer_.refresh(); !s.ok()) {
    return Outcome<std::vector<ZoneInfo>>::failed(what("getAllDomains", s));
  }
  std::vector<ZoneInfo> zones;
  for (const ZoneEntry& zone : answerer_.zones()) {
    if (zone.zone.mode == ZoneMode::kAuthoritative) zones.push_back(zone_info(zone));
  }
  return zones;
}

Outcome<ZoneInfo> PdnsCalls::domain_info(std::string_view zone) {
  if (Status s = answerer_.refresh(); !s.ok()) {
    return Outcome<ZoneInfo>::no_after_error(what("getDomainInfo", s));
  }
  const ZoneEntry* entry = answerer_.find_zone(zone);
  if (entry == nullptr || entry->zone.mode != ZoneMode::kAuthoritative) {
    return Outcome<ZoneInfo>::no();
  }
  return zone_info(*entry);
}

Outcome<std::vector<ZoneInfo>> PdnsCalls::updated_masters() {
  if (Status s = answerer_.refresh(); !s.ok()) {
    return Outcome<std::vector<ZoneInfo>>::no_after_error(what("getUpdatedMasters", s));
  }
  std::vector<ZoneInfo> zones;
  for (const ZoneEntry& zone : answerer_.zones()) {
    const Zone& z = zone.zone;
    if (z.mode != ZoneMode::kAuthoritative || z.kind != ZoneKind::kMaster) continue;
    if (z.notified_serial == static_cast<std::int64_t>(z.serial)) continue;
    zones.push_back(zone_info(zone));
  }
  return zones;
}

Outcome<Done> PdnsCalls::set_notified(std::int64_t zone_id, std::uint32_t serial) {
  const Status s = keys_->set_notified(zone_id, serial);
  if (!s.ok()) return Outcome<Done>::no_after_error(what("setNotified", s));
  return Done{};
}

Outcome<std::vector<DomainKey>> PdnsCalls::domain_keys(std::string_view zone) {
  auto keys = keys_->get_domain_keys(zone);
  if (keys.ok()) return std::move(keys).value();
  // A zone not in our table is another backend's: "no", also when the store failed.
  if (not_ours(keys.status()) || !answerer_.knows(zone)) {
    return Outcome<std::vector<DomainKey>>::no();
  }
  return Outcome<std::vector<DomainKey>>::failed(what("getDomainKeys", keys.status()));
}

Outcome<DomainMetadata> PdnsCalls::all_domain_metadata(std::string_view zone) {
  // "no" for zones that are not ours: pdns then asks the next backend, so an overlay never
  // hides the owner's NSEC3PARAM.
  auto meta = keys_->get_all_domain_metadata(zone);
  if (meta.ok()) return std::move(meta).value();
  if (not_ours(meta.status()) || !answerer_.knows(zone)) return Outcome<DomainMetadata>::no();
  return Outcome<DomainMetadata>::failed(what("getAllDomainMetadata", meta.status()));
}

Outcome<std::vector<std::string>> PdnsCalls::domain_metadata(std::string_view zone,
                                                             std::string_view kind) {
  auto values = keys_->get_domain_metadata(zone, kind);
  if (values.ok()) return std::move(values).value();
  if (not_ours(values.status())) return Outcome<std::vector<std::string>>::no();
  return Outcome<std::vector<std::string>>::no_after_error(
      what("getDomainMetadata", values.status()));
}

Outcome<std::int64_t> PdnsCalls::add_domain_key(std::string_view zone, const DomainKey& key) {
  auto id = keys_->add_domain_key(zone, key);
  if (!id.ok()) return refused<std::int64_t>("addDomainKey", id.status());
  return *id;
}

Outcome<Done> PdnsCalls::remove_domain_key(std::string_view zone, std::int64_t id) {
  return done_or_refused("removeDomainKey", keys_->remove_domain_key(zone, id));
}

Outcome<Done> PdnsCalls::set_key_active(std::string_view zone, std::int64_t id, bool active) {
  return done_or_refused(active ? "activateDomainKey" : "deactivateDomainKey",
                         keys_->set_key_active(zone, id, active));
}

Outcome<Done> PdnsCalls::set_key_published(std::string_view zone, std::int64_t id, bool published) {
  return done_or_refused(published ? "publishDomainKey" : "unpublishDomainKey",
                         keys_->set_key_published(zone, id, published));
}

Outcome<Done> PdnsCalls::set_domain_metadata(std::string_view zone, std::string_view kind,
                                             const std::vector<std::string>& values) {
  return done_or_refused("setDomainMetadata", keys_->set_domain_metadata(zone, kind, values));
}

Outcome<Done> PdnsCalls::start_transaction(std::string_view zone, std::int64_t zone_id) {
  if (Status s = answerer_.refresh(); !s.ok()) return refused<Done>("startTransaction", s);
  const ZoneEntry* entry = answerer_.find_zone(zone);
  if (entry == nullptr || entry->zone.mode != ZoneMode::kAuthoritative) {
    return Outcome<Done>::no();
  }
  if (zone_id >= 0) {
    return refused<Done>("startTransaction",
                         Status::invalid_argument(entry->zone.name,
                                                  "zone records are managed with smimea-ctl; "
                                                  "pdns cannot replace them"));
  }
  return done_or_refused("startTransaction", keys_->begin());
}

Outcome<Done> PdnsCalls::commit_transaction() {
  if (!keys_->in_transaction()) return Outcome<Done>::no();
  return done_or_refused("commitTransaction", keys_->commit());
}

Outcome<Done> PdnsCalls::abort_transaction() {
  if (!keys_->in_transaction()) return Outcome<Done>::no();
  return done_or_refused("abortTransaction", keys_->rollback());
}

Outcome<const ZoneEntry*> PdnsCalls::nsec_zone(std::int64_t zone_id) {
  if (Status s = answerer_.refresh(); !s.ok()) {
    return Outcome<const ZoneEntry*>::failed(what(kNeighboursCall, s));
  }
  const ZoneEntry* zone = answerer_.find_zone_by_id(zone_id);
  // The catalog is not signed: it has no keys (getDomainKeys says no).
  if (zone == nullptr || zone->zone.mode != ZoneMode::kAuthoritative || zone->catalog) {
    return Outcome<const ZoneEntry*>::no();
  }
  return zone;
}

Outcome<NsecNeighbours> PdnsCalls::before_and_after(std::int64_t zone_id,
                                                    const std::vector<std::string>& labels) {
  auto zone = nsec_zone(zone_id);
  if (!zone.answered()) return Outcome<NsecNeighbours>::like(std::move(zone));
  return neighbours(**zone, labels);
}

Outcome<NsecNeighbours> PdnsCalls::before_and_after(std::int64_t zone_id, std::string_view name) {
  auto zone = nsec_zone(zone_id);
  if (!zone.answered()) return Outcome<NsecNeighbours>::like(std::move(zone));
  auto labels = split_name(name);
  if (!labels.ok()) return Outcome<NsecNeighbours>::failed(what(kNeighboursCall, labels.status()));
  return neighbours(**zone, *labels);
}

Outcome<NsecNeighbours> PdnsCalls::neighbours(const ZoneEntry& zone,
                                              const std::vector<std::string>& labels) {
  using Out = Outcome<NsecNeighbours>;
  if (labels.size() == 1 && looks_like_nsec3_hash(labels.front())) {
    auto param = keys_->get_domain_metadata(zone.zone.name, "NSEC3PARAM");
    if (!param.ok() && !not_ours(param.status())) {
      return Out::failed(what(kNeighboursCall, param.status()));
    }
    if (param.ok() && !param->empty()) {
      return Out::failed("zone " + zone.zone.name +
                         " uses NSEC3 without narrow, which this backend does not support: run "
                         "pdnsutil set-nsec3 " +
                         zone.zone.name + " '1 0 0 -' narrow");
    }
  }
  KeyStoreOwnerReader reader(*keys_, zone.zone.id);
  // A delegated _smimecert child is a name of the parent (the cut), records or not.
  auto n =
      nsec_neighbours(zone.zone.name, zone.zone.has_records || zone.child >= 0, labels, reader);
  if (!n.ok()) return Out::failed(what(kNeighboursCall, n.status()));
  return std::move(n).value();
}

Outcome<TsigKey> PdnsCalls::tsig_key(std::string_view name, std::string_view algorithm) {
  auto key = keys_->get_tsig_key(name);
  if (!key.ok()) {
    if (key.status().is_not_found()) return Outcome<TsigKey>::no();
    return Outcome<TsigKey>::no_after_error(what("getTSIGKey", key.status()));
  }
  // A caller asking for one algorithm gets the key only if it is of that algorithm.
  if (!algorithm.empty() && lower_no_dot(algorithm) != lower_no_dot(key->algorithm)) {
    return Outcome<TsigKey>::no();
  }
  return std::move(key).value();
}

Outcome<std::vector<TsigKey>> PdnsCalls::tsig_keys() {
  auto keys = keys_->get_tsig_keys();
  if (!keys.ok()) {
    return Outcome<std::vector<TsigKey>>::no_after_error(what("getTSIGKeys", keys.status()));
  }
  return std::move(keys).value();
}

Outcome<Done> PdnsCalls::set_tsig_key(const TsigKey& key) {
  const Status s = keys_->set_tsig_key(key);
  if (!s.ok()) return Outcome<Done>::no_after_error(what("setTSIGKey", s));
  return Done{};
}

Outcome<Done> PdnsCalls::delete_tsig_key(std::string_view name) {
  const Status s = keys_->delete_tsig_key(name);
  if (!s.ok()) return Outcome<Done>::no_after_error(what("deleteTSIGKey", s));
  return Done{};
}

Outcome<std::string> PdnsCalls::backend_command(std::string_view query, const Counters& counters) {
  if (query == "status" || query == "stats") {
    if (Status s = answerer_.refresh(); !s.ok()) {
      return Outcome<std::string>::no_after_error(what("directBackendCmd", s));
    }
    std::size_t authoritative = 0;
    for (const ZoneEntry& z : answerer_.zones()) {
      authoritative += z.zone.mode == ZoneMode::kAuthoritative ? 1 : 0;
    }
    return "database " + config_.database + "; schema version " + std::to_string(kSchemaVersion) +
           "; zones " + std::to_string(answerer_.zones().size()) + " (" +
           std::to_string(authoritative) + " authoritative); this connection: requests " +
           std::to_string(counters.requests) + ", lookups " + std::to_string(answerer_.lookups()) +
           ", failures " + std::to_string(counters.failures);
  }
  if (query == "help" || query.empty()) {
    return std::string("commands: status (store, zones and counters of this connection)");
  }
  return "unknown command '" + std::string(query) + "'; try: help";
}

}  // namespace smimea
