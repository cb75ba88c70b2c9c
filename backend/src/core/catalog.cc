// The catalog zone (RFC 9432, version 2), served from the Answerer's zone table.
//
// `catalog: NAME` makes NAME an authoritative zone of kind master with pdns's zone id
// kCatalogZoneId (0: never a rowid of the zones table). Its records:
//   NAME                       SOA  (the soa template, the catalog's own serial)
//   NAME                       NS   invalid.
//   version.NAME               TXT  "2"
//   <catalog_id>.zones.NAME    PTR  <member>.     one per authoritative zone of the store
// zones.NAME is an empty non-terminal. Overlay zones are not members: they belong to another
// backend. Everything is answered from memory: the zone table (zone_table.cc) holds the
// catalog's entry, with its serial, and its members by unique id.
#include "smimea/answer.h"

namespace smimea {
namespace {

constexpr std::string_view kCatalogNs = "invalid.";
constexpr std::string_view kCatalogVersion = "\"2\"";
constexpr std::string_view kVersionLabel = "version";
constexpr std::string_view kZonesLabel = "zones";

}  // namespace

const ZoneEntry* Answerer::catalog_above(std::string_view lower_name) const {
  const ZoneEntry* catalog = table_ == nullptr ? nullptr : table_->catalog();
  if (catalog == nullptr) return nullptr;
  const std::string& apex = catalog->zone.name;
  if (lower_name.size() <= apex.size() + 1) return nullptr;
  const std::size_t dot = lower_name.size() - apex.size() - 1;
  if (lower_name[dot] != '.' || lower_name.substr(dot + 1) != apex) return nullptr;
  return catalog;
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
    if (!table_->has_catalog_members()) {
      *result = LookupResult::kNxdomain;
    } else if (any) {
      sink.add_ent(qname, id);
    }
    return;
  }
  const std::size_t dot = relative.find('.');
  if (dot != std::string_view::npos && relative.substr(dot + 1) == kZonesLabel) {
    if (const ZoneEntry* member = table_->catalog_member(relative.substr(0, dot))) {
      if (any || qtype == QType::kPtr) {
        sink.add_text(qname, QType::kPtr, config_.ns_ttl, id, member->fqdn, true);
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
  for (const ZoneEntry& z : table_->zones()) {
    if (z.catalog || z.zone.mode != ZoneMode::kAuthoritative || z.zone.catalog_id.empty()) {
      continue;
    }
    texts->push_back({z.zone.catalog_id + "." + std::string(kZonesLabel) + "." + catalog.fqdn,
                      QType::kPtr, config_.ns_ttl, z.fqdn, true});
  }
}

}  // namespace smimea
