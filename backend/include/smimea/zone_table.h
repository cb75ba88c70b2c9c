// The zone table the Answerers of a process answer from: the store's zones sorted by name,
// each with its SOA content rendered, the delegations inside the store and the catalog's
// members. Built from one read snapshot and never changed after, so that every Answerer of
// the process (pdns makes a backend instance per thread and one more per zone transfer)
// shares the one table of the store's current zone-table version instead of each loading its
// own: at 10,000 zones a load costs tens of milliseconds.
//
// The version (Store::zone_table_version) is kept by the store's triggers: a new random value
// whenever a row of `zones` or `catalog` changes, in the transaction that changes it. Every
// change that moves what the table holds writes such a row (a record added or removed moves
// its zone's serial), so two snapshots with one version have one table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "smimea/config.h"
#include "smimea/status.h"
#include "smimea/store.h"

namespace smimea {

struct ZoneEntry {
  Zone zone;
  std::string soa_content;  // "mname rname serial refresh retry expire minimum"
  // What follows the 56 hex digits in an owner name of this zone, fully qualified:
  // "._smimecert.example.com." or, for a zone whose apex is _smimecert.example.com, ".<apex>.".
  std::string owner_suffix;
  std::string fqdn;  // "example.com."
  // Delegations inside the store: the index in the zone table of this zone's authoritative
  // child _smimecert.<name> (this zone delegates it: NS and DS at the cut, nothing below),
  // and of this _smimecert zone's authoritative parent. -1 if none.
  int child = -1;
  int parent = -1;
  // The catalog zone (`catalog:`; id kCatalogZoneId, serial from Store::load_catalog): its
  // answers are the members' PTRs, not the store's records (catalog.cc).
  bool catalog = false;
};

class ZoneTable {
 public:
  // What a table depends on besides the store's contents: the store (its path and options)
  // and the configuration's SOA template and catalog name. Computed once per Answerer.
  static std::string key(const Store& store, const Config& config);

  // The table of the store's current read snapshot, which the caller holds: `mine` if it is
  // of the snapshot's version, else the process's shared table for key if it is, else one
  // loaded now, which becomes the shared one.
  static Result<std::shared_ptr<const ZoneTable>> current(Store& store, const Config& config,
                                                          const std::string& key,
                                                          std::shared_ptr<const ZoneTable> mine);

  std::int64_t version() const { return version_; }
  // Sorted by name.
  const std::vector<ZoneEntry>& zones() const { return zones_; }
  const ZoneEntry& at(int index) const { return zones_[static_cast<std::size_t>(index)]; }
  // lower_name: lower-case, no trailing dot.
  const ZoneEntry* find(std::string_view lower_name) const;
  const ZoneEntry* find_by_id(std::int64_t id) const;
  // The catalog zone's entry; nullptr if none is configured.
  const ZoneEntry* catalog() const { return catalog_index_ < 0 ? nullptr : &at(catalog_index_); }
  // The member zone whose catalog id is unique_id; nullptr if none.
  const ZoneEntry* catalog_member(std::string_view unique_id) const;
  bool has_catalog_members() const { return !catalog_members_.empty(); }

  ZoneTable(const ZoneTable&) = delete;
  ZoneTable& operator=(const ZoneTable&) = delete;

 private:
  ZoneTable() = default;
  static Result<std::shared_ptr<const ZoneTable>> load(Store& store, const Config& config,
                                                       std::int64_t version);
  Status add_catalog(Store& store, const Config& config);
  void index();

  std::int64_t version_ = 0;
  std::vector<ZoneEntry> zones_;
  std::unordered_map<std::int64_t, std::size_t> by_id_;
  // The keys view zones_[i].zone.name and .catalog_id: the table never changes once built.
  std::unordered_map<std::string_view, std::size_t> by_name_;
  std::unordered_map<std::string_view, std::size_t> catalog_members_;
  int catalog_index_ = -1;
};

}  // namespace smimea
