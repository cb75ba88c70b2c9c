// The catalog zone (RFC 9432, version 2), served from the Answerer's zone table.
//
// `catalog: NAME` makes NAME an authoritative zone of kind master with pdns's zone id
// kCatalogZoneId (0: never a rowid of the zones table). Its records:
//   NAME                       SOA  (the soa template, the catalog's own serial)
//   NAME                       NS   invalid.
//   version.NAME               TXT  "2"
//   <catalog_id>.zones.NAME    PTR  <member>.     one per authoritative zone of the store
// zones.NAME is an empty non-terminal. Overlay zones are not members: they belong to another
// backend. Everything is answered from memory: the table is reloaded when the store changes,
// and the members' ids and the catalog's serial are read with it.
#include <algorithm>

#include "smimea/answer.h"

namespace smimea {
namespace {

constexpr std::string_view kCatalogNs = "invalid.";
constexpr std::string_view kCatalogVersion = "\"2\"";
constexpr std::string_view kVersionLabel = "version";
constexpr std::string_view kZonesLabel = "zones";

}  // namespace

Status Answerer::load_catalog_entry(std::vector<ZoneEntry>* entries) {
  catalog_index_ = -1;
  if (config_.catalog.empty()) return Status();
  CatalogState state;
  SMIMEA_RETURN_IF_ERROR(store_.load_catalog(&state));
  // A zone of the store with the catalog's name is not served (smimea-ctl check-config
  // refuses the configuration, zone add warns): the catalog answers for the name.
  entries->erase(std::remove_if(entries->begin(), entries->end(),
                                [&](const ZoneEntry& e) { return e.zone.name == config_.catalog; }),
                 entries->end());
  ZoneEntry e;
  e.catalog = true;
  e.zone.id = kCatalogZoneId;
  e.zone.name = config_.catalog;
  e.zone.mode = ZoneMode::kAuthoritative;
  e.zone.kind = ZoneKind::kMaster;
  e.zone.serial = state.serial;
  e.zone.notified_serial = state.notified_serial;
  e.fqdn = config_.catalog + ".";
  const SoaTemplate& soa = config_.soa;
  e.soa_content = soa.mname + " " + soa.rname + " " + std::to_string(state.serial) + " " +
                  std::to_string(soa.refresh) + " " + std::to_string(soa.retry) + " " +
                  std::to_string(soa.expire) + " " + std::to_string(soa.minimum);
  auto at =
      std::lower_bound(entries->begin(), entries->end(), e.zone.name,
                       [](const ZoneEntry& z, const std::string& n) { return z.zone.name < n; });
  catalog_index_ = static_cast<int>(at - entries->begin());
  entries->insert(at, std::move(e));
  return Status();
}

void Answerer::index_catalog_members() {
  catalog_members_.clear();
  if (catalog_index_ < 0) return;
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    const ZoneEntry& z = zones_[i];
    if (z.catalog || z.zone.mode != ZoneMode::kAuthoritative || z.zone.catalog_id.empty()) {
      continue;
    }
    catalog_members_.emplace(z.zone.catalog_id, i);
  }
}

const ZoneEntry* Answerer::catalog_above(std::string_view lower_name) const {
  if (catalog_index_ < 0) return nullptr;
  const ZoneEntry& catalog = zones_[static_cast<std::size_t>(catalog_index_)];
  const std::string& apex = catalog.zone.name;
  if (lower_name.size() <= apex.size() + 1) return nullptr;
  const std::size_t dot = lower_name.size() - apex.size() - 1;
  if (lower_name[dot] != '.' || lower_name.substr(dot + 1) != apex) return nullptr;
  return &catalog;
}

void Answerer::answer_catalog(std::string_view qname, std::string_view lower_name, QType qtype,
                              const ZoneEntry& catalog, RecordSink& sink,
                              LookupResult* result) const {
  const std::int64_t id = catalog.zone.id;
  const bool any = qtype == QType::kAny;
  *result = LookupResult::kNodata;
  const std::string& apex = catalog.zone.name;
  if (lower_name.size() == apex.size()) {
    if (any || qtype == QType::kSoa) {
      sink.add_text(qname, QType::kSoa, config_.soa.ttl, id, catalog.soa_content, true);
      *result = LookupResult::kAnswer;
    }
    if (any || qtype == QType::kNs) {
      sink.add_text(qname, QType::kNs, config_.ns_ttl, id, kCatalogNs, true);
      *result = LookupResult::kAnswer;
    }
    return;
  }
  // What is left of the name below the apex: "version", "zones" or "<id>.zones".
  const std::string_view relative = lower_name.substr(0, lower_name.size() - apex.size() - 1);
  if (relative == kVersionLabel) {
    if (any || qtype == QType::kTxt) {
      sink.add_text(qname, QType::kTxt, config_.ns_ttl, id, kCatalogVersion, true);
      *result = LookupResult::kAnswer;
    }
    return;
  }
  if (relative == kZonesLabel) {
    if (any && !catalog_members_.empty()) sink.add_ent(qname, id);
    if (catalog_members_.empty()) *result = LookupResult::kNxdomain;
    return;
  }
  const std::size_t dot = relative.find('.');
  if (dot != std::string_view::npos && relative.substr(dot + 1) == kZonesLabel) {
    auto it = catalog_members_.find(relative.substr(0, dot));
    if (it != catalog_members_.end()) {
      if (any || qtype == QType::kPtr) {
        sink.add_text(qname, QType::kPtr, config_.ns_ttl, id, zones_[it->second].fqdn, true);
        *result = LookupResult::kAnswer;
      }
      return;
    }
  }
  *result = LookupResult::kNxdomain;
}

void Answerer::catalog_texts(const ZoneEntry& catalog,
                             std::vector<ZoneListing::TextRecord>* texts) const {
  texts->push_back({catalog.fqdn, QType::kSoa, config_.soa.ttl, catalog.soa_content, true});
  texts->push_back({catalog.fqdn, QType::kNs, config_.ns_ttl, std::string(kCatalogNs), true});
  texts->push_back({std::string(kVersionLabel) + "." + catalog.fqdn, QType::kTxt, config_.ns_ttl,
                    std::string(kCatalogVersion), true});
  // The members in the table's order (by zone name).
  for (const ZoneEntry& z : zones_) {
    if (z.catalog || z.zone.mode != ZoneMode::kAuthoritative || z.zone.catalog_id.empty()) {
      continue;
    }
    texts->push_back({z.zone.catalog_id + "." + std::string(kZonesLabel) + "." + catalog.fqdn,
                      QType::kPtr, config_.ns_ttl, z.fqdn, true});
  }
}

}  // namespace smimea
