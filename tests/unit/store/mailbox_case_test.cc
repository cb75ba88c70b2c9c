// Issue 17: one mailbox per case-folded address (README, "Mailbox case"), one TTL per RRset
// (RFC 2181 section 5.2), a store that other users cannot read, and the version-4 migration
// that repairs older stores. Raw SQL (sqlite3.h) only inspects files independently.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../store_util.h"
#include "../test_util.h"
#include "smimea/hex.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::StoreFixture;
using test::TempDir;

// Runs sql on the file with its own connection; returns every row, columns joined by ' '.
std::vector<std::string> raw_rows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::vector<std::string> out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const auto* text = sqlite3_column_text(stmt, i);
        row += (i > 0 ? " " : "") + std::string(text ? reinterpret_cast<const char*>(text) : "");
      }
      out.push_back(row);
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

// "ttl usage selector matching_type" of each record at local_part's owner, as served.
std::vector<std::string> served(Store& store, std::int64_t zone_id, std::string_view local_part) {
  class Collect : public RecordVisitor {
   public:
    void visit(const RecordView& r) override {
      lines.push_back(std::to_string(r.ttl) + " " +
                      std::to_string(static_cast<int>(r.params.usage)) + " " +
                      std::to_string(static_cast<int>(r.params.selector)) + " " +
                      std::to_string(static_cast<int>(r.params.matching_type)));
    }
    std::vector<std::string> lines;
  } c;
  EXPECT_TRUE(test::visit_records(store, zone_id, owner_hash(local_part), c).ok());
  return c.lines;
}

Result<AddResult> add_in_transaction(Store& store, const Zone& zone, const NewCertificate& cert) {
  EXPECT_TRUE(store.begin().ok());
  auto added = store.add_certificate(zone, cert);
  if (added.ok()) {
    EXPECT_TRUE(store.commit().ok());
  } else {
    store.rollback();
  }
  return added;
}

Zone case_sensitive_zone(StoreFixture& f, const std::string& name) {
  EXPECT_TRUE(f.store().begin().ok());
  auto zone = f.store().add_zone(name, ZoneMode::kAuthoritative, ZoneKind::kMaster, nullptr, true);
  EXPECT_TRUE(zone.ok()) << zone.status().message();
  EXPECT_TRUE(f.store().commit().ok());
  return zone.ok() ? *zone : Zone{};
}

// --- one mailbox per case-folded address ---

TEST(RegressIssue17MailboxCase, AnotherSpellingOfAStoredMailboxIsRefused) {
  // Before: alice@'s certificate was stored as a second mailbox, and Alice@'s certificate
  // answered for alice@ at the lower-cased owner name.
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(zone, new_certificate("rsa.pem", "Alice@example.com"));
  auto second = add_in_transaction(f.store(), zone, new_certificate("ec.pem", "alice@example.com"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kConflict);
  EXPECT_NE(second.status().message().find("stored as Alice@example.com"), std::string::npos)
      << second.status().message();
  EXPECT_EQ(raw_rows(f.path(), "SELECT address FROM certificates"),
            std::vector<std::string>{"Alice@example.com"});
}

TEST(RegressIssue17MailboxCase, MailboxAddressIsTheStoredSpelling) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(zone, new_certificate("rsa.pem", "Alice@example.com"));
  auto stored = f.store().mailbox_address(zone, "ALICE@example.com");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->value_or(""), "Alice@example.com");
  auto none = f.store().mailbox_address(zone, "bob@example.com");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(RegressIssue17MailboxCase, ListAndRemoveTakeTheWholeMailbox) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(zone, new_certificate("rsa.pem", "Alice@example.com"));
  f.add(zone, new_certificate("ec.pem", "Alice@example.com"));
  f.add(zone, new_certificate("ed25519.pem", "bob@example.com"));
  auto listed = f.store().list_certificates("aLiCe@example.com", "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u);
  ASSERT_TRUE(f.store().begin().ok());
  auto removed = f.store().remove_certificates("ALICE@example.com", std::nullopt);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2);
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_TRUE(served(f.store(), zone.id, "Alice").empty());
  EXPECT_TRUE(served(f.store(), zone.id, "alice").empty());
  EXPECT_EQ(served(f.store(), zone.id, "bob").size(), 1u);
}

TEST(RegressIssue17MailboxCase, CaseSensitiveZoneKeepsTheMailboxesApart) {
  StoreFixture f;
  const Zone zone = case_sensitive_zone(f, "example.com");
  ASSERT_TRUE(zone.case_sensitive);
  // As smimea-ctl adds them there: no lower-cased variant.
  f.add(zone, new_certificate("rsa.pem", "Alice@example.com", {RecordParams{}}, 3600, false));
  f.add(zone, new_certificate("ec.pem", "alice@example.com", {RecordParams{}}, 3600, false));
  EXPECT_EQ(served(f.store(), zone.id, "Alice").size(), 1u);
  EXPECT_EQ(served(f.store(), zone.id, "alice").size(), 1u);
  auto stored = f.store().mailbox_address(zone, "ALICE@example.com");
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
  auto listed = f.store().list_certificates("alice@example.com", "");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().address, "alice@example.com");

  ASSERT_TRUE(f.store().begin().ok());
  auto other_case = f.store().remove_certificates("ALICE@example.com", std::nullopt);
  ASSERT_TRUE(other_case.ok());
  EXPECT_EQ(*other_case, 0);
  auto exact = f.store().remove_certificates("Alice@example.com", std::nullopt);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, 1);
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_TRUE(served(f.store(), zone.id, "Alice").empty());
  EXPECT_EQ(served(f.store(), zone.id, "alice").size(), 1u);
}

TEST(RegressIssue17MailboxCase, SetCaseRefusesAZoneWithCertificates) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  ASSERT_TRUE(f.store().begin().ok());
  auto empty = f.store().set_zone_case("example.com", true);
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty->case_sensitive);
  ASSERT_TRUE(f.store().commit().ok());
  f.add(f.zone("example.com"), new_certificate("rsa.pem", "alice@example.com"));
  ASSERT_TRUE(f.store().begin().ok());
  auto refused = f.store().set_zone_case("example.com", false);
  f.store().rollback();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kConflict);
  EXPECT_TRUE(f.zone("example.com").case_sensitive);
  (void)zone;
}

TEST(RegressIssue17MailboxCase, NoMoveBetweenZonesWithOtherCaseRules) {
  StoreFixture f;
  const Zone parent = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(parent, new_certificate("rsa.pem", "Alice@example.com"));
  ASSERT_TRUE(f.store().begin().ok());
  auto child = f.store().add_zone("_smimecert.example.com", ZoneMode::kAuthoritative,
                                  ZoneKind::kMaster, nullptr, true);
  f.store().rollback();
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), Status::Code::kConflict);
  EXPECT_NE(child.status().message().find("add it without --case-sensitive"), std::string::npos)
      << child.status().message();
}

// --- one TTL per RRset ---

TEST(RegressIssue17RrsetTtl, AnExplicitTtlIsTheWholeRrsets) {
  // Before: two certificates of one address added with different --ttl were served with
  // their own TTLs in one RRset.
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(zone, new_certificate("rsa.pem", "alice@example.com", {RecordParams{}}, 600));
  auto added = add_in_transaction(
      f.store(), zone, new_certificate("ec.pem", "alice@example.com", {RecordParams{}}, 300));
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(added->records_added, 1);
  EXPECT_EQ(added->records_updated, 1);  // rsa.pem's record
  EXPECT_EQ(served(f.store(), zone.id, "alice"),
            (std::vector<std::string>{"300 3 0 0", "300 3 0 0"}));
}

TEST(RegressIssue17RrsetTtl, WithoutATtlNewRecordsJoinTheirRrsetsTtl) {
  // default-ttl changed between two adds: the RRset keeps the TTL it has.
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(zone, new_certificate("rsa.pem", "alice@example.com", {RecordParams{}}, 600));
  NewCertificate later = new_certificate("ec.pem", "alice@example.com", {RecordParams{}}, 7200);
  later.ttl_explicit = false;
  auto added = add_in_transaction(f.store(), zone, later);
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(added->records_updated, 0);
  EXPECT_EQ(served(f.store(), zone.id, "alice"),
            (std::vector<std::string>{"600 3 0 0", "600 3 0 0"}));
  // A new owner gets the TTL asked for.
  NewCertificate bob = new_certificate("ed25519.pem", "bob@example.com", {RecordParams{}}, 7200);
  bob.ttl_explicit = false;
  ASSERT_TRUE(add_in_transaction(f.store(), zone, bob).ok());
  EXPECT_EQ(served(f.store(), zone.id, "bob"), std::vector<std::string>{"7200 3 0 0"});
}

TEST(RegressIssue17RrsetTtl, ReAddingWithoutATtlChangesNothing) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(zone, new_certificate("rsa.pem", "alice@example.com", {RecordParams{}}, 600));
  NewCertificate again = new_certificate("rsa.pem", "alice@example.com", {RecordParams{}}, 3600);
  again.ttl_explicit = false;
  auto added = add_in_transaction(f.store(), zone, again);
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(added->changed());
  EXPECT_EQ(served(f.store(), zone.id, "alice"), std::vector<std::string>{"600 3 0 0"});
}

// --- max-rrset-bytes counts what goes on the wire ---

// A made-up certificate for address with one 3 1 1 record of 32 octets at one owner.
NewCertificate digest_only(const std::string& address, std::uint8_t n) {
  NewCertificate c = new_certificate("ec.pem", address);
  c.fingerprint.fill(n);
  c.records.resize(1);
  c.records[0].params = {Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256};
  c.records[0].data.assign(32, n);
  return c;
}

TEST(RegressIssue17RrsetCap, SmallRecordsCountTheirWireOverhead) {
  // Before: 3 octets per record besides the data, so a cap near 64 KB let an RRset of small
  // records grow past a 65,535-octet message (47 octets each on the wire, 35 counted).
  StoreOptions options;
  options.max_rrset_bytes = 1024;  // 21 x 47 = 987 fits, 22 x 47 = 1034 does not
  StoreFixture f(options);
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  for (std::uint8_t i = 1; i <= 21; ++i) {
    ASSERT_EQ(f.add(zone, digest_only("carol@example.com", i)), 1) << int{i};
  }
  auto refused = add_in_transaction(f.store(), zone, digest_only("carol@example.com", 22));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("1034 bytes"), std::string::npos)
      << refused.status().message();
}

// --- the store's files ---

mode_t file_mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(RegressIssue17StoreFiles, NewStoreIsNotReadableByOthersUnderUmask022) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  const mode_t old = ::umask(022);
  auto init = Store::init(path);
  ::umask(old);
  ASSERT_TRUE(init.ok()) << init.status().message();
  EXPECT_EQ(file_mode(path), 0640u);
  EXPECT_TRUE(Store::access_warnings(path).empty());
}

TEST(RegressIssue17StoreFiles, InitTakesOthersAccessAwayAndSaysSo) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  ASSERT_TRUE(Store::init(path).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  const auto warnings = Store::access_warnings(path);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings.front().find("mode 644"), std::string::npos) << warnings.front();
  std::vector<std::string> notes;
  ASSERT_TRUE(Store::init(path, &notes).ok());
  EXPECT_EQ(file_mode(path), 0640u);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes.front().find("removed other users' access"), std::string::npos);
  EXPECT_TRUE(Store::access_warnings(path).empty());
}

// --- the migration from version 3 ---

// tests/data/db/store-v3.db (see its README): Alice@ (rsa.pem, TTL 600), alice@ (ed25519.pem,
// TTL 300, --force) and ALICE@ (rsa.pem again, TTL 300) as three mailboxes in example.com,
// and carol@example.org in _smimecert.example.org.
TEST(RegressIssue17Migration, Version3StoreGetsOneMailboxAndOneTtlPerRrset) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  std::filesystem::copy_file(test::data_path("db/store-v3.db"), path);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);  // only the migration's notes
  const auto serial_before = raw_rows(path, "SELECT serial FROM zones WHERE name='example.com'");
  std::vector<std::string> notes;
  auto before = Store::init(path, &notes);
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_EQ(*before, 3);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("2 certificate(s) stored under another letter case"), std::string::npos)
      << notes[0];
  EXPECT_NE(notes[1].find("1 RRset(s) had records with different TTLs"), std::string::npos)
      << notes[1];
  // One mailbox, its first spelling; rsa.pem stored once, ed25519.pem kept.
  EXPECT_EQ(raw_rows(path, "SELECT address, count(*) FROM certificates GROUP BY address"),
            (std::vector<std::string>{"Alice@example.com 2", "carol@example.org 1"}));
  // Every RR stays served: rsa.pem at Alice, ALICE (moved to the kept row) and alice (its
  // duplicate there went with the row), ed25519.pem at alice; one TTL per owner, the newest
  // record's.
  EXPECT_EQ(raw_rows(path,
                     "SELECT count(DISTINCT ttl), count(*) FROM records GROUP BY zone_id, owner "
                     "ORDER BY count(*)"),
            (std::vector<std::string>{"1 1", "1 1", "1 1", "1 2"}));
  EXPECT_EQ(raw_rows(path,
                     "SELECT DISTINCT ttl FROM records WHERE owner = (SELECT owner FROM "
                     "records GROUP BY owner HAVING count(*) = 2)"),
            std::vector<std::string>{"300"});
  EXPECT_NE(raw_rows(path, "SELECT serial FROM zones WHERE name='example.com'"), serial_before);
  EXPECT_EQ(raw_rows(path, "SELECT DISTINCT case_sensitive FROM zones"),
            std::vector<std::string>{"0"});
  auto again = Store::init(path, &notes);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, kSchemaVersion);
}

}  // namespace
}  // namespace smimea
