#include "dnssec_calls.h"

#include <algorithm>

#include "pdns/logger.hh"
#include "smimea/nsec.h"

namespace smimea::pdns_module {
namespace {

bool not_ours(const Status& s) {
  return s.code() == Status::Code::kNotFound || s.code() == Status::Code::kConflict;
}

KeyStoreOptions key_store_options(const Config& config) {
  KeyStoreOptions options;
  // Writers (pdnsutil, smimea-ctl) hold the lock for milliseconds.
  options.busy_timeout_ms = std::max<std::uint32_t>(config.busy_timeout_ms, 1000);
  return options;
}

}  // namespace

DnssecCalls::DnssecCalls(const Config& config, Answerer& answerer)
    : answerer_(answerer), keys_(config.database, key_store_options(config)) {}

bool DnssecCalls::failed(const char* call, const Status& status) const {
  if (!not_ours(status)) {
    g_log << Logger::Error << "[smimea] " << call << ": " << status.message() << std::endl;
  }
  return false;
}

bool DnssecCalls::read_failed(const char* call, const std::string& zone,
                              const Status& status) const {
  // A zone not in our table is another backend's: false, also when the store failed (pdns
  // may be asking from its secondary thread, where an exception stops it).
  if (not_ours(status) || !answerer_.knows(zone)) return failed(call, status);
  throw DBException(std::string("smimea: ") + call + ": " + status.message());
}

bool DnssecCalls::refresh() {
  const Status s = answerer_.refresh();
  if (!s.ok()) throw DBException("smimea: " + s.message());
  return true;
}

bool DnssecCalls::get_domain_keys(const DNSName& name, std::vector<DNSBackend::KeyData>& keys) {
  auto stored = keys_.get_domain_keys(name.toStringNoDot());
  if (!stored.ok()) return read_failed("getDomainKeys", name.toStringNoDot(), stored.status());
  keys.clear();
  for (const DomainKey& k : *stored) {
    DNSBackend::KeyData kd;
    kd.id = static_cast<unsigned int>(k.id);
    kd.flags = k.flags;
    kd.active = k.active;
    kd.published = k.published;
    kd.content = k.content;
    keys.push_back(std::move(kd));
  }
  return true;
}

bool DnssecCalls::add_domain_key(const DNSName& name, const DNSBackend::KeyData& key, int64_t& id) {
  DomainKey k;
  k.flags = key.flags;
  k.active = key.active;
  k.published = key.published;
  k.content = key.content;
  auto added = keys_.add_domain_key(name.toStringNoDot(), k);
  if (!added.ok()) return failed("addDomainKey", added.status());
  id = *added;
  return true;
}

bool DnssecCalls::remove_domain_key(const DNSName& name, unsigned int id) {
  const Status s = keys_.remove_domain_key(name.toStringNoDot(), id);
  return s.ok() || failed("removeDomainKey", s);
}

bool DnssecCalls::set_key_active(const DNSName& name, unsigned int id, bool active) {
  const Status s = keys_.set_key_active(name.toStringNoDot(), id, active);
  return s.ok() || failed(active ? "activateDomainKey" : "deactivateDomainKey", s);
}

bool DnssecCalls::set_key_published(const DNSName& name, unsigned int id, bool published) {
  const Status s = keys_.set_key_published(name.toStringNoDot(), id, published);
  return s.ok() || failed(published ? "publishDomainKey" : "unpublishDomainKey", s);
}

bool DnssecCalls::get_all_domain_metadata(const DNSName& name,
                                          std::map<std::string, std::vector<std::string>>& meta) {
  // false for zones that are not ours: UeberBackend then asks the next backend, so an overlay
  // never hides the owner's NSEC3PARAM.
  auto stored = keys_.get_all_domain_metadata(name.toStringNoDot());
  if (!stored.ok())
    return read_failed("getAllDomainMetadata", name.toStringNoDot(), stored.status());
  meta = std::move(stored).value();
  return true;
}

bool DnssecCalls::get_domain_metadata(const DNSName& name, const std::string& kind,
                                      std::vector<std::string>& meta) {
  // false on errors too: pdns's communicator thread asks (TSIG-ALLOW-AXFR for a NOTIFY) and
  // stops pdns on an exception.
  auto stored = keys_.get_domain_metadata(name.toStringNoDot(), kind);
  if (!stored.ok()) return failed("getDomainMetadata", stored.status());
  meta = std::move(stored).value();
  return true;
}

bool DnssecCalls::set_domain_metadata(const DNSName& name, const std::string& kind,
                                      const std::vector<std::string>& meta) {
  const Status s = keys_.set_domain_metadata(name.toStringNoDot(), kind, meta);
  return s.ok() || failed("setDomainMetadata", s);
}

bool DnssecCalls::start_transaction(const DNSName& zone, int domain_id) {
  refresh();
  const ZoneEntry* entry = answerer_.find_zone(zone.toStringNoDot());
  if (entry == nullptr || entry->zone.mode != ZoneMode::kAuthoritative) return false;
  if (domain_id >= 0) {
    // A zone id means "replace the zone's records" (AXFR-in, load-zone, clear-zone).
    return failed("startTransaction",
                  Status::invalid_argument(entry->zone.name,
                                           "zone records are managed with smimea-ctl; pdns "
                                           "cannot replace them"));
  }
  const Status s = keys_.begin();
  return s.ok() || failed("startTransaction", s);
}

bool DnssecCalls::commit_transaction() {
  if (!keys_.in_transaction()) return false;
  const Status s = keys_.commit();
  return s.ok() || failed("commitTransaction", s);
}

bool DnssecCalls::abort_transaction() {
  if (!keys_.in_transaction()) return false;
  const Status s = keys_.rollback();
  return s.ok() || failed("abortTransaction", s);
}

bool DnssecCalls::get_before_and_after_names_absolute(uint32_t id, const DNSName& qname,
                                                      DNSName& unhashed, DNSName& before,
                                                      DNSName& after) {
  refresh();
  const ZoneEntry* zone = answerer_.find_zone_by_id(id);
  if (zone == nullptr || zone->zone.mode != ZoneMode::kAuthoritative) return false;
  const std::vector<std::string> labels = qname.getRawLabels();
  // A hashed name comes only from NSEC3 without narrow: refused, narrow NSEC3 never asks.
  if (labels.size() == 1 && looks_like_nsec3_hash(labels.front())) {
    auto param = keys_.get_domain_metadata(zone->zone.name, "NSEC3PARAM");
    if (!param.ok()) {
      // throws unless not ours
      read_failed("getBeforeAndAfterNamesAbsolute", zone->zone.name, param.status());
    } else if (!param->empty()) {
      throw DBException("smimea: zone " + zone->zone.name +
                        " uses NSEC3 without narrow, which this backend does not support: run "
                        "pdnsutil set-nsec3 " +
                        zone->zone.name + " '1 0 0 -' narrow");
    }
  }
  KeyStoreOwnerReader reader(keys_, zone->zone.id);
  // A delegated _smimecert child is a name of the parent (the cut), records or not.
  auto n =
      nsec_neighbours(zone->zone.name, zone->zone.has_records || zone->child >= 0, labels, reader);
  if (!n.ok()) return read_failed("getBeforeAndAfterNamesAbsolute", zone->zone.name, n.status());
  // Relative names; DNSBackend::getBeforeAndAfterNames appends the zone. The apex is the root.
  before = n->before.empty() ? DNSName(".") : DNSName(n->before);
  after = n->after.empty() ? DNSName(".") : DNSName(n->after);
  unhashed = before;
  return true;
}

}  // namespace smimea::pdns_module
