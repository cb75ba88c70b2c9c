#include "smimea/zone_table.h"

#include <algorithm>
#include <mutex>

#include "smimea/owner_name.h"

namespace smimea {
namespace {

std::string soa_content(const SoaTemplate& soa, std::uint32_t serial) {
  return soa.mname + " " + soa.rname + " " + std::to_string(serial) + " " +
         std::to_string(soa.refresh) + " " + std::to_string(soa.retry) + " " +
         std::to_string(soa.expire) + " " + std::to_string(soa.minimum);
}

// The process's shared tables, the latest one loaded per key. Never destroyed: backend
// instances may outlive main()'s statics.
struct Shared {
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<const ZoneTable>> tables;
};

Shared& shared() {
  static Shared* s = new Shared;
  return *s;
}

}  // namespace

std::string ZoneTable::key(const Store& store, const Config& config) {
  const SoaTemplate& soa = config.soa;
  std::string key = store.path();
  for (const std::string* part : {&config.catalog, &soa.mname, &soa.rname}) {
    key += '\0';
    key += *part;
  }
  for (const std::uint32_t n : {soa.refresh, soa.retry, soa.expire, soa.minimum}) {
    key += '\0';
    key += std::to_string(n);
  }
  key += '\0';
  key += store.options().withdraw_expired ? 'w' : '-';
  return key;
}

Result<std::shared_ptr<const ZoneTable>> ZoneTable::current(Store& store, const Config& config,
                                                            const std::string& key,
                                                            std::shared_ptr<const ZoneTable> mine) {
  auto version = store.zone_table_version();
  if (!version.ok()) return version.status();
  if (mine != nullptr && mine->version_ == *version) return mine;
  Shared& s = shared();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.tables.find(key);
    if (it != s.tables.end() && it->second->version_ == *version) return it->second;
  }
  // Loaded outside the lock: Answerers of other stores, or of this one with a table of their
  // version, do not wait. Two that need the same new version may both load it.
  auto table = load(store, config, *version);
  if (!table.ok()) return table.status();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.tables[key] = *table;
  return table;
}

Result<std::shared_ptr<const ZoneTable>> ZoneTable::load(Store& store, const Config& config,
                                                         std::int64_t version) {
  std::vector<Zone> zones;
  SMIMEA_RETURN_IF_ERROR(store.load_zones(&zones));
  std::shared_ptr<ZoneTable> table(new ZoneTable);
  table->version_ = version;
  table->zones_.reserve(zones.size() + 1);
  for (Zone& z : zones) {
    ZoneEntry e;
    e.fqdn = z.name + ".";
    e.owner_suffix = starts_with_smimecert(z.name) ? "." + e.fqdn : "._smimecert." + e.fqdn;
    e.soa_content = soa_content(config.soa, z.serial);
    e.zone = std::move(z);
    table->zones_.push_back(std::move(e));
  }
  SMIMEA_RETURN_IF_ERROR(table->add_catalog(store, config));
  table->index();
  return std::shared_ptr<const ZoneTable>(std::move(table));
}

Status ZoneTable::add_catalog(Store& store, const Config& config) {
  if (config.catalog.empty()) return Status();
  CatalogState state;
  SMIMEA_RETURN_IF_ERROR(store.load_catalog(&state));
  // A zone of the store with the catalog's name is not served (smimea-ctl check-config
  // refuses the configuration, zone add warns): the catalog answers for the name.
  zones_.erase(std::remove_if(zones_.begin(), zones_.end(),
                              [&](const ZoneEntry& e) { return e.zone.name == config.catalog; }),
               zones_.end());
  ZoneEntry e;
  e.catalog = true;
  e.zone.id = kCatalogZoneId;
  e.zone.name = config.catalog;
  e.zone.mode = ZoneMode::kAuthoritative;
  e.zone.kind = ZoneKind::kMaster;
  e.zone.serial = state.serial;
  e.zone.notified_serial = state.notified_serial;
  e.fqdn = config.catalog + ".";
  e.soa_content = soa_content(config.soa, state.serial);
  auto at =
      std::lower_bound(zones_.begin(), zones_.end(), e.zone.name,
                       [](const ZoneEntry& z, const std::string& n) { return z.zone.name < n; });
  catalog_index_ = static_cast<int>(at - zones_.begin());
  zones_.insert(at, std::move(e));
  return Status();
}

void ZoneTable::index() {
  // A question looks up several names among the zones (the apex, the parent of _smimecert,
  // below_a_zone's walk): a hash lookup each, whatever the number of zones.
  by_id_.reserve(zones_.size());
  by_name_.reserve(zones_.size());
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    by_id_.emplace(zones_[i].zone.id, i);
    by_name_.emplace(zones_[i].zone.name, i);
  }
  // A _smimecert.<domain> zone under its zone <domain>, both ours and authoritative, is a
  // delegation: the parent answers NS and DS at the cut (RFC 4035 section 2.4).
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    ZoneEntry& child = zones_[i];
    if (child.zone.mode != ZoneMode::kAuthoritative || !starts_with_smimecert(child.zone.name)) {
      continue;
    }
    auto it = by_name_.find(std::string_view(child.zone.name).substr(kSmimecertLabel.size() + 1));
    if (it == by_name_.end()) continue;
    ZoneEntry& parent = zones_[it->second];
    if (parent.zone.mode != ZoneMode::kAuthoritative || starts_with_smimecert(parent.zone.name) ||
        parent.catalog) {
      continue;
    }
    parent.child = static_cast<int>(i);
    child.parent = static_cast<int>(it->second);
  }
  // The catalog's members: the authoritative zones, by unique id.
  if (catalog_index_ < 0) return;
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    const ZoneEntry& z = zones_[i];
    if (z.catalog || z.zone.mode != ZoneMode::kAuthoritative || z.zone.catalog_id.empty()) {
      continue;
    }
    catalog_members_.emplace(z.zone.catalog_id, i);
  }
}

const ZoneEntry* ZoneTable::find(std::string_view lower_name) const {
  auto it = by_name_.find(lower_name);
  return it == by_name_.end() ? nullptr : &zones_[it->second];
}

const ZoneEntry* ZoneTable::find_by_id(std::int64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &zones_[it->second];
}

const ZoneEntry* ZoneTable::catalog_member(std::string_view unique_id) const {
  auto it = catalog_members_.find(unique_id);
  return it == catalog_members_.end() ? nullptr : &zones_[it->second];
}

}  // namespace smimea
