// The store's write side: transactions, zones, certificates (smimea-ctl only).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "smimea/owner_name.h"
#include "smimea/store.h"
#include "sqlite_util.h"
#include "store_impl.h"

namespace smimea {

using detail::exec;
using detail::now_seconds;
using detail::sqlite_error;
using detail::Statement;

Status SqliteStore::begin() {
  impl_->touched_zones.clear();
  impl_->catalog_touched = false;
  return exec(impl_->db.get(), "BEGIN IMMEDIATE", "begin transaction");
}

Status SqliteStore::commit() {
  Statement& s = impl_->bump_serial;
  for (std::int64_t zone_id : impl_->touched_zones) {
    // The serial moves forward on every change (RFC 1982 arithmetic: +1 wraps at 2^32), and
    // jumps to the current time when that is larger, so it also encodes when it changed.
    SMIMEA_RETURN_IF_ERROR(
        s.prepare(impl_->db.get(),
                  "UPDATE zones SET serial = CASE WHEN ?2 > serial AND ?2 <= 4294967295 THEN ?2 "
                  "ELSE (serial + 1) % 4294967296 END, updated_at = ?2, serial_changed_at = ?2 "
                  "WHERE id = ?1"));
    s.bind(1, zone_id);
    s.bind(2, now_seconds());
    if (s.step() != SQLITE_DONE) return impl_->error("bump serial");
  }
  impl_->touched_zones.clear();
  if (impl_->catalog_touched) {
    // The catalog's serial, by the same rule: its members changed.
    Statement& c = impl_->bump_catalog;
    SMIMEA_RETURN_IF_ERROR(c.prepare(
        impl_->db.get(),
        "UPDATE catalog SET serial = CASE WHEN ?1 > serial AND ?1 <= 4294967295 THEN ?1 ELSE "
        "(serial + 1) % 4294967296 END WHERE id = 0"));
    c.bind(1, now_seconds());
    if (c.step() != SQLITE_DONE) return impl_->error("bump catalog serial");
    c.reset();
    impl_->catalog_touched = false;
  }
  if (sqlite3_exec(impl_->db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Status st = impl_->error("commit");
    rollback();
    return st;
  }
  return Status();
}

void SqliteStore::rollback() noexcept {
  impl_->touched_zones.clear();
  impl_->catalog_touched = false;
  if (sqlite3_get_autocommit(impl_->db.get()) == 0) {
    sqlite3_exec(impl_->db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status SqliteStore::savepoint() {
  impl_->touched_before_savepoint = impl_->touched_zones;
  impl_->catalog_touched_before_savepoint = impl_->catalog_touched;
  return exec(impl_->db.get(), "SAVEPOINT provision", "savepoint");
}

Status SqliteStore::release_savepoint() {
  return exec(impl_->db.get(), "RELEASE provision", "release savepoint");
}

void SqliteStore::rollback_to_savepoint() noexcept {
  impl_->touched_zones = impl_->touched_before_savepoint;
  impl_->catalog_touched = impl_->catalog_touched_before_savepoint;
  sqlite3_exec(impl_->db.get(), "ROLLBACK TO provision; RELEASE provision", nullptr, nullptr,
               nullptr);
}

namespace {

// Moves the certificates that `where` picks (a condition on certificates, with ?2 and, if
// given, ?3 bound to p2 and p3) into zone `to`, with their records. Returns how many moved.
Result<int> move_certificates(sqlite3* db, std::string_view where, std::int64_t to, std::int64_t p2,
                              std::optional<std::string_view> p3 = {}) {
  const std::string picked(where);
  for (const std::string& sql :
       {"UPDATE records SET zone_id = ?1 WHERE certificate_id IN (SELECT id FROM certificates "
        "WHERE " +
            picked + ")",
        "UPDATE certificates SET zone_id = ?1 WHERE " + picked}) {
    Statement move;
    SMIMEA_RETURN_IF_ERROR(move.prepare(db, sql));
    move.bind(1, to);
    move.bind(2, p2);
    if (p3) move.bind_text(3, *p3);
    if (move.step() != SQLITE_DONE) return sqlite_error(db, "move certificates");
  }
  return sqlite3_changes(db);  // of the certificates
}

std::string_view case_rule(bool case_sensitive) {
  return case_sensitive ? "exactly (case-sensitive)" : "ignoring letter case";
}

// Refuses to move certificates between zones that compare local-parts differently: their
// mailboxes and owner names were decided under the other rule.
Status check_same_case_rule(sqlite3* db, const Zone& from, const Zone& to, std::string_view what,
                            std::string_view fix) {
  if (from.case_sensitive == to.case_sensitive) return Status();
  Statement count;
  SMIMEA_RETURN_IF_ERROR(count.prepare(db, "SELECT count(*) FROM certificates WHERE zone_id = ?1"));
  count.bind(1, from.id);
  if (count.step() != SQLITE_ROW) return sqlite_error(db, "count certificates");
  if (count.int64(0) == 0) return Status();
  return Status::conflict(std::string(what),
                          "zone " + from.name + " compares local-parts " +
                              std::string(case_rule(from.case_sensitive)) + " and zone " + to.name +
                              " " + std::string(case_rule(to.case_sensitive)) + ", and " +
                              std::to_string(count.int64(0)) +
                              " certificate(s) would move between them; " + std::string(fix));
}

}  // namespace

Result<Zone> SqliteStore::add_zone(std::string_view name, ZoneMode mode, ZoneKind kind, int* moved,
                                   bool case_sensitive) {
  if (moved != nullptr) *moved = 0;
  auto existing = find_zone(name);
  if (existing.ok()) return Status::conflict(std::string(name), "zone already exists");
  if (!existing.status().is_not_found()) return existing.status();
  Statement& s = impl_->add_zone;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(),
                                   "INSERT INTO zones (name, mode, serial, created_at, "
                                   "updated_at, kind, case_sensitive, serial_changed_at, "
                                   "catalog_id) VALUES (?1, ?2, ?3, ?3, ?3, ?4, ?5, ?3, "
                                   "lower(hex(randomblob(8))))"));
  s.bind_text(1, name);
  const std::string_view mode_name = zone_mode_name(mode);
  s.bind_text(2, mode_name);
  s.bind(3, now_seconds());
  const std::string_view kind_name = zone_kind_name(kind);
  s.bind_text(4, kind_name);
  s.bind(5, case_sensitive ? 1 : 0);
  if (s.step() != SQLITE_DONE) return impl_->error("add zone " + std::string(name));
  s.reset();
  // A new member of the catalog (a new unique id, even for a name that was there before).
  if (mode == ZoneMode::kAuthoritative) impl_->catalog_touched = true;
  auto zone = find_zone(name);
  if (!zone.ok() || !starts_with_smimecert(name)) return zone;

  // _smimecert.<domain>: the certificates of <domain> stored in the parent zone move here,
  // or queries would come here for them and find nothing.
  const std::string_view domain = name.substr(kSmimecertLabel.size() + 1);
  auto parent = find_zone(domain);
  if (!parent.ok()) return parent.status().is_not_found() ? zone : parent.status();
  SMIMEA_RETURN_IF_ERROR(check_same_case_rule(
      impl_->db.get(), *parent, *zone, name,
      parent->case_sensitive ? "add it with --case-sensitive" : "add it without --case-sensitive"));
  auto count = move_certificates(impl_->db.get(), "zone_id = ?2 AND domain = ?3", zone->id,
                                 parent->id, domain);
  if (!count.ok()) return count.status();
  // The parent's answers change even without certificates moving: it now delegates the zone
  // (NS and DS at the cut). The new zone's serial is new.
  impl_->touched_zones.insert(parent->id);
  if (moved != nullptr) *moved = *count;
  return zone;
}

Result<Zone> SqliteStore::set_zone_kind(std::string_view name, ZoneKind kind) {
  auto zone = find_zone(name);
  if (!zone.ok()) return zone.status();
  Statement& s = impl_->set_kind;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), "UPDATE zones SET kind = ?2, updated_at = ?3 WHERE id = ?1"));
  s.bind(1, zone->id);
  const std::string_view kind_name = zone_kind_name(kind);
  s.bind_text(2, kind_name);
  s.bind(3, now_seconds());
  if (s.step() != SQLITE_DONE) return impl_->error("set kind of zone " + std::string(name));
  s.reset();
  return find_zone(name);
}

Result<Zone> SqliteStore::set_zone_case(std::string_view name, bool case_sensitive) {
  auto zone = find_zone(name);
  if (!zone.ok()) return zone.status();
  if (zone->case_sensitive == case_sensitive) return zone;
  sqlite3* db = impl_->db.get();
  Statement count;
  SMIMEA_RETURN_IF_ERROR(count.prepare(db, "SELECT count(*) FROM certificates WHERE zone_id = ?1"));
  count.bind(1, zone->id);
  if (count.step() != SQLITE_ROW) return impl_->error("count certificates");
  if (count.int64(0) > 0) {
    return Status::conflict(std::string(name),
                            "zone has " + std::to_string(count.int64(0)) +
                                " certificate(s), whose mailboxes and owner names follow the "
                                "zone's rule; remove them first and add them again after");
  }
  Statement set;
  SMIMEA_RETURN_IF_ERROR(
      set.prepare(db, "UPDATE zones SET case_sensitive = ?2, updated_at = ?3 WHERE id = ?1"));
  set.bind(1, zone->id);
  set.bind(2, case_sensitive ? 1 : 0);
  set.bind(3, now_seconds());
  if (set.step() != SQLITE_DONE) return impl_->error("set case rule of zone " + std::string(name));
  return find_zone(name);
}

Result<int> SqliteStore::remove_zone(std::string_view name, bool force, int* moved) {
  if (moved != nullptr) *moved = 0;
  auto zone = find_zone(name);
  if (!zone.ok()) return zone.status();
  sqlite3* db = impl_->db.get();
  if (starts_with_smimecert(name)) {
    // _smimecert.<domain> with <domain> in the store: its certificates go back there (the
    // undoing of add_zone's move), where queries for their owners go once this zone is gone.
    auto parent = find_zone(name.substr(kSmimecertLabel.size() + 1));
    if (!parent.ok() && !parent.status().is_not_found()) return parent.status();
    if (parent.ok()) {
      SMIMEA_RETURN_IF_ERROR(check_same_case_rule(db, *zone, *parent, name,
                                                  "make zone " + parent->name +
                                                      " compare alike first (smimea-ctl "
                                                      "zone set-case)"));
      auto count = move_certificates(db, "zone_id = ?2", parent->id, zone->id);
      if (!count.ok()) return count.status();
      impl_->touched_zones.insert(parent->id);  // no delegation any more
      if (moved != nullptr) *moved = *count;
    }
  }
  Statement count;
  SMIMEA_RETURN_IF_ERROR(count.prepare(db, "SELECT count(*) FROM certificates WHERE zone_id = ?1"));
  count.bind(1, zone->id);
  if (count.step() != SQLITE_ROW) return impl_->error("count certificates");
  const int certs = static_cast<int>(count.int64(0));
  if (certs > 0 && !force) {
    return Status::conflict(std::string(name),
                            "zone still has " + std::to_string(certs) +
                                " certificate(s); use --force to remove them too");
  }
  for (const char* sql :
       {"DELETE FROM records WHERE zone_id = ?1", "DELETE FROM certificates WHERE zone_id = ?1",
        "DELETE FROM zones WHERE id = ?1"}) {
    Statement s;
    SMIMEA_RETURN_IF_ERROR(s.prepare(db, sql));
    s.bind(1, zone->id);
    if (s.step() != SQLITE_DONE) return impl_->error("remove zone " + std::string(name));
  }
  // A token's scope names the zone: a zone added again under this name is a new one, not the
  // tokens' (a token left with no scope acts nowhere).
  Statement scopes;
  SMIMEA_RETURN_IF_ERROR(
      scopes.prepare(db, "DELETE FROM token_scopes WHERE kind = 'zone' AND value = ?1"));
  scopes.bind_text(1, zone->name);
  if (scopes.step() != SQLITE_DONE) return impl_->error("remove zone " + std::string(name));
  impl_->touched_zones.erase(zone->id);
  if (zone->mode == ZoneMode::kAuthoritative) impl_->catalog_touched = true;
  return certs;
}

namespace {

// What an SMIMEA record costs on the wire besides its association data: the compressed owner
// (2), type, class, TTL and RDLENGTH (10), usage, selector and matching type (3). The SQL
// below counts the same 15.
constexpr std::size_t kRecordWireOverhead = 15;

// The octets of an owner's RRset on the wire (each distinct RR once), whether the RR
// (?3, ?4, ?5, ?6) is in it, and the RRset's TTL (NULL if it has no record).
constexpr std::string_view kRrsetSizeSql =
    "SELECT COALESCE(SUM(15 + length(data)), 0), COALESCE(MAX(usage = ?3 AND selector = ?4 AND "
    "matching_type = ?5 AND data = ?6), 0), (SELECT ttl FROM records t WHERE t.zone_id = ?1 AND "
    "t.owner = ?2 ORDER BY t.id DESC LIMIT 1) FROM records r WHERE zone_id = ?1 AND owner = ?2 "
    "AND NOT EXISTS (SELECT 1 FROM records d WHERE d.zone_id = ?1 AND d.owner = ?2 AND d.id < "
    "r.id AND d.usage = r.usage AND d.selector = r.selector AND d.matching_type = "
    "r.matching_type AND d.data = r.data)";

}  // namespace

Result<AddResult> SqliteStore::add_certificate(const Zone& zone, const NewCertificate& cert) {
  sqlite3* db = impl_->db.get();
  AddResult result;
  result.zone = zone.name;
  if (!zone.case_sensitive) {
    // One mailbox, one spelling: records computed for another letter case of a stored
    // mailbox would not be at its owner names.
    auto stored = mailbox_address(zone, cert.address);
    if (!stored.ok()) return stored.status();
    if (*stored && **stored != cert.address) {
      return Status::conflict(cert.address, "the mailbox is stored as " + **stored + " (zone " +
                                                zone.name +
                                                " ignores letter case in "
                                                "local-parts): add it under that spelling");
    }
  }
  Statement& find = impl_->cert_by_fp;
  SMIMEA_RETURN_IF_ERROR(find.prepare(
      db, "SELECT id, zone_id FROM certificates WHERE address = ?1 AND fingerprint = ?2"));
  find.bind_text(1, cert.address);
  find.bind_blob(2, cert.fingerprint.data(), cert.fingerprint.size());
  std::int64_t cert_id = -1;
  std::int64_t stored_zone = -1;
  int rc = find.step();
  if (rc == SQLITE_ROW) {
    cert_id = find.int64(0);
    stored_zone = find.int64(1);
  } else if (rc != SQLITE_DONE) {
    return impl_->error("find certificate");
  }
  find.reset();

  // Everything is checked before anything is written: cert import goes on after a refused
  // certificate and commits the others, so a refusal must leave none of its rows behind. (A
  // savepoint would do too, but it copies every page the certificate touches to a statement
  // journal: gigabytes for a large import.)
  struct Insert {
    const NewCertificate::Record* record;
    std::uint32_t ttl;  // the RRset's, unless the certificate asks for one
  };
  std::vector<Insert> to_insert;
  std::vector<std::pair<OwnerHash, std::size_t>> added;  // RRset octets this call adds, by owner
  const bool moving = cert_id >= 0 && stored_zone != zone.id;  // see below
  if (moving) {
    // Its records join this zone's RRsets, where they count against max_rrset_bytes (unless
    // the same RR is published here already).
    Statement rows;
    SMIMEA_RETURN_IF_ERROR(rows.prepare(
        db,
        "SELECT owner, 15 + length(data) FROM records r WHERE certificate_id = ?1 AND NOT EXISTS "
        "(SELECT 1 FROM records d WHERE d.zone_id = ?2 AND d.owner = r.owner AND d.usage = "
        "r.usage AND d.selector = r.selector AND d.matching_type = r.matching_type AND d.data = "
        "r.data)"));
    rows.bind(1, cert_id);
    rows.bind(2, zone.id);
    while ((rc = rows.step()) == SQLITE_ROW) {
      OwnerHash owner{};
      if (rows.blob(0) == nullptr || rows.bytes(0) != owner.size()) {
        return Status::store_error(impl_->path, "record with a malformed owner");
      }
      std::copy(rows.blob(0), rows.blob(0) + owner.size(), owner.begin());
      auto mine =
          std::find_if(added.begin(), added.end(), [&](const auto& a) { return a.first == owner; });
      if (mine == added.end()) mine = added.emplace(added.end(), owner, 0);
      mine->second += static_cast<std::size_t>(rows.int64(1));
    }
    if (rc != SQLITE_DONE) return impl_->error("measure records of " + cert.address);
  }
  auto rrset_too_large = [&](const OwnerHash& owner, std::size_t bytes) {
    return Status::conflict(
        owner_name(owner, cert.domain),
        "RRset would be " + std::to_string(bytes) + " bytes, over max-rrset-bytes (" +
            std::to_string(impl_->options.max_rrset_bytes) + "); remove old certificates first");
  };
  for (const auto& rec : cert.records) {
    result.ttls.push_back(rec.ttl);
    if (cert_id >= 0) {
      Statement& exists = impl_->rr_exists;
      SMIMEA_RETURN_IF_ERROR(
          exists.prepare(db,
                         "SELECT id, ttl FROM records WHERE certificate_id = ?1 AND owner = ?2 "
                         "AND usage = ?3 AND selector = ?4 AND matching_type = ?5"));
      exists.bind(1, cert_id);
      exists.bind_blob(2, rec.owner.data(), rec.owner.size());
      exists.bind(3, static_cast<int>(rec.params.usage));
      exists.bind(4, static_cast<int>(rec.params.selector));
      exists.bind(5, static_cast<int>(rec.params.matching_type));
      rc = exists.step();
      if (rc == SQLITE_ROW) {  // there already; an explicit TTL is set below, RRset-wide
        if (!cert.ttl_explicit) result.ttls.back() = static_cast<std::uint32_t>(exists.int64(1));
        exists.reset();
        continue;
      }
      exists.reset();
      if (rc != SQLITE_DONE) return impl_->error("find record");
    }

    // The same RR may already be published by another certificate row (Alice@ and alice@
    // share the lower-cased owner; a renewal with the same key has the same SPKI digest).
    // Each certificate keeps its own row, so removing one leaves the other's RR in place;
    // readers skip the duplicate, and it does not grow the RRset.
    Statement& size = impl_->rrset_size;
    SMIMEA_RETURN_IF_ERROR(size.prepare(db, kRrsetSizeSql));
    size.bind(1, zone.id);
    size.bind_blob(2, rec.owner.data(), rec.owner.size());
    size.bind(3, static_cast<int>(rec.params.usage));
    size.bind(4, static_cast<int>(rec.params.selector));
    size.bind(5, static_cast<int>(rec.params.matching_type));
    size.bind_blob(6, rec.data.data(), rec.data.size());
    if (size.step() != SQLITE_ROW) return impl_->error("measure RRset");
    const bool published = size.int64(1) != 0;
    const auto stored = static_cast<std::size_t>(size.int64(0));
    const std::uint32_t ttl =
        cert.ttl_explicit || size.is_null(2) ? rec.ttl : static_cast<std::uint32_t>(size.int64(2));
    size.reset();
    result.ttls.back() = ttl;
    if (!published) {
      auto mine = std::find_if(added.begin(), added.end(),
                               [&](const auto& a) { return a.first == rec.owner; });
      if (mine == added.end()) mine = added.emplace(added.end(), rec.owner, 0);
      mine->second += kRecordWireOverhead + rec.data.size();
      const std::size_t bytes = stored + mine->second;
      if (bytes > impl_->options.max_rrset_bytes) return rrset_too_large(rec.owner, bytes);
    }
    to_insert.push_back({&rec, ttl});
  }
  if (moving) {
    // Owners that get moved records but no new one were not measured above.
    Statement& size = impl_->rrset_size;
    for (const auto& [owner, bytes] : added) {
      SMIMEA_RETURN_IF_ERROR(size.prepare(db, kRrsetSizeSql));
      size.bind(1, zone.id);
      size.bind_blob(2, owner.data(), owner.size());
      for (int i = 3; i <= 5; ++i) size.bind(i, -1);  // no such RR: only the size counts
      size.bind_blob(6, "", 0);
      if (size.step() != SQLITE_ROW) return impl_->error("measure RRset");
      const auto total = static_cast<std::size_t>(size.int64(0)) + bytes;
      size.reset();
      if (total > impl_->options.max_rrset_bytes) return rrset_too_large(owner, total);
    }
  }

  if (moving) {
    // Stored in another zone than the one its domain's queries go to now (a store from
    // before add_zone moved certificates into a new _smimecert zone): it moves here.
    SMIMEA_RETURN_IF_ERROR(move_certificates(db, "id = ?2", zone.id, cert_id).status());
    impl_->touched_zones.insert(stored_zone);
    impl_->touched_zones.insert(zone.id);
    result.moved = true;
  }
  if (cert.ttl_explicit) {
    // One TTL per RRset (RFC 2181 section 5.2): the TTL asked for now is every record's at
    // the certificate's owners, other certificates' records included.
    std::vector<const NewCertificate::Record*> owners;
    for (const auto& rec : cert.records) {
      if (std::none_of(owners.begin(), owners.end(),
                       [&](const auto* o) { return o->owner == rec.owner; })) {
        owners.push_back(&rec);
      }
    }
    for (const NewCertificate::Record* rec : owners) {
      Statement& update = impl_->set_rrset_ttl;
      SMIMEA_RETURN_IF_ERROR(update.prepare(
          db, "UPDATE records SET ttl = ?3 WHERE zone_id = ?1 AND owner = ?2 AND ttl != ?3"));
      update.bind(1, zone.id);
      update.bind_blob(2, rec->owner.data(), rec->owner.size());
      update.bind(3, static_cast<std::int64_t>(rec->ttl));
      if (update.step() != SQLITE_DONE) return impl_->error("set TTL for " + cert.address);
      result.records_updated += sqlite3_changes(db);
    }
  }
  if (result.records_updated > 0) impl_->touched_zones.insert(zone.id);
  if (cert_id < 0) {
    Statement& ins = impl_->insert_cert;
    SMIMEA_RETURN_IF_ERROR(ins.prepare(
        db,
        "INSERT INTO certificates (zone_id, address, domain, fingerprint, der, subject, issuer, "
        "serial, not_before, not_after, created_at, changed_by) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"));
    ins.bind(1, zone.id);
    ins.bind_text(2, cert.address);
    ins.bind_text(3, cert.domain);
    ins.bind_blob(4, cert.fingerprint.data(), cert.fingerprint.size());
    ins.bind_blob(5, cert.der.data(), cert.der.size());
    ins.bind_text(6, cert.subject);
    ins.bind_text(7, cert.issuer);
    ins.bind_text(8, cert.serial);
    ins.bind(9, cert.not_before);
    ins.bind(10, cert.not_after);
    ins.bind(11, now_seconds());
    ins.bind_text(12, cert.changed_by);
    if (ins.step() != SQLITE_DONE) return impl_->error("insert certificate " + cert.address);
    cert_id = sqlite3_last_insert_rowid(db);
  } else if (result.changed() || !to_insert.empty()) {
    Statement& who = impl_->set_changed_by;
    SMIMEA_RETURN_IF_ERROR(
        who.prepare(db, "UPDATE certificates SET changed_by = ?2 WHERE id = ?1"));
    who.bind(1, cert_id);
    who.bind_text(2, cert.changed_by);
    if (who.step() != SQLITE_DONE) return impl_->error("audit " + cert.address);
  }
  for (const auto& [rec, ttl] : to_insert) {
    Statement& ins = impl_->insert_record;
    SMIMEA_RETURN_IF_ERROR(ins.prepare(
        db,
        "INSERT INTO records (certificate_id, zone_id, owner, usage, selector, matching_type, "
        "ttl, data, not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    ins.bind(1, cert_id);
    ins.bind(2, zone.id);
    ins.bind_blob(3, rec->owner.data(), rec->owner.size());
    ins.bind(4, static_cast<int>(rec->params.usage));
    ins.bind(5, static_cast<int>(rec->params.selector));
    ins.bind(6, static_cast<int>(rec->params.matching_type));
    ins.bind(7, ttl);
    ins.bind_blob(8, rec->data.data(), rec->data.size());
    ins.bind(9, cert.not_after);
    if (ins.step() != SQLITE_DONE) return impl_->error("insert record for " + cert.address);
    ++result.records_added;
  }
  if (result.records_added > 0) impl_->touched_zones.insert(zone.id);
  return result;
}

Result<int> SqliteStore::remove_certificates(
    std::string_view address, const std::optional<std::array<std::uint8_t, 32>>& fingerprint) {
  sqlite3* db = impl_->db.get();
  Statement sel;
  // The mailbox, as list_certificates() finds it.
  SMIMEA_RETURN_IF_ERROR(sel.prepare(
      db,
      "SELECT c.id, c.zone_id FROM certificates c JOIN zones z ON z.id = c.zone_id WHERE "
      "c.address = ?1 COLLATE NOCASE AND (z.case_sensitive = 0 OR c.address = ?1) AND (?2 IS "
      "NULL OR c.fingerprint = ?2)"));
  sel.bind_text(1, address);
  if (fingerprint) {
    sel.bind_blob(2, fingerprint->data(), fingerprint->size());
  } else {
    sel.bind_null(2);
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> victims;
  int rc;
  while ((rc = sel.step()) == SQLITE_ROW) victims.emplace_back(sel.int64(0), sel.int64(1));
  if (rc != SQLITE_DONE) return impl_->error("find certificates");
  for (const auto& [cert_id, zone_id] : victims) {
    for (const char* sql : {"DELETE FROM records WHERE certificate_id = ?1",
                            "DELETE FROM certificates WHERE id = ?1"}) {
      Statement s;
      SMIMEA_RETURN_IF_ERROR(s.prepare(db, sql));
      s.bind(1, cert_id);
      if (s.step() != SQLITE_DONE) return impl_->error("remove certificate");
    }
    impl_->touched_zones.insert(zone_id);
  }
  return static_cast<int>(victims.size());
}

}  // namespace smimea
