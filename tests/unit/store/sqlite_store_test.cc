// The SQLite store: creating, opening and refusing stores, zones, certificates, serials and
// the RRset cap. Raw SQL (sqlite3.h) is used only to set up or inspect files independently.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <string>

#include "../store_util.h"
#include "../test_util.h"
#include "smimea/hex.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::StoreFixture;
using test::TempDir;

// Runs sql on the file with a separate connection; returns the first column of the first row
// (or -1 if none).
std::int64_t raw_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::int64_t out = -1;
  const char* tail = sql.c_str();
  while (tail != nullptr && *tail != '\0') {
    if (sqlite3_prepare_v2(db, tail, -1, &stmt, &tail) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
      break;
    }
    if (stmt == nullptr) break;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (out == -1) out = sqlite3_column_int64(stmt, 0);
    }
    EXPECT_EQ(rc, SQLITE_DONE) << sql << ": " << sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

std::int64_t count_rows(const std::string& path, const std::string& table) {
  return raw_sql(path, "SELECT count(*) FROM " + table);
}

Status open_error(const std::string& path) {
  auto store = Store::open(path, StoreOptions{});
  EXPECT_FALSE(store.ok()) << path << " was opened";
  return store.ok() ? Status() : store.status();
}

// --- init / open ---

TEST(StoreInit, CreatesThenReportsUpToDate) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  auto first = Store::init(path);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, 0);
  auto second = Store::init(path);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(*second, kSchemaVersion);
  EXPECT_EQ(raw_sql(path, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count_rows(path, "zones"), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(StoreOpen, MissingFile) {
  TempDir dir;
  const Status s = open_error(dir.file("nope.db"));
  EXPECT_EQ(s.code(), Status::Code::kStoreError);
  EXPECT_NE(s.message().find("nope.db"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not found"), std::string::npos) << s.message();
  EXPECT_FALSE(std::filesystem::exists(dir.file("nope.db")));
}

TEST(StoreOpen, Directory) {
  TempDir dir;
  EXPECT_EQ(open_error(dir.path().string()).code(), Status::Code::kStoreError);
}

TEST(StoreOpen, NotADatabase) {
  TempDir dir;
  const std::string path = dir.file("text.db");
  std::ofstream(path) << "database: /var/lib/smimea/store.db\n" << std::string(4096, 'x') << '\n';
  const Status s = open_error(path);
  EXPECT_EQ(s.code(), Status::Code::kStoreError);
  EXPECT_NE(s.message().find("text.db"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not a"), std::string::npos) << s.message();
  auto init = Store::init(path);
  ASSERT_FALSE(init.ok());
  EXPECT_EQ(init.status().code(), Status::Code::kStoreError);
}

TEST(StoreOpen, EmptyFileIsNotAStore) {
  TempDir dir;
  const std::string path = dir.file("empty.db");
  std::ofstream{path};
  const Status s = open_error(path);
  EXPECT_NE(s.message().find("smimea-ctl init"), std::string::npos) << s.message();
}

TEST(StoreOpen, ForeignDatabaseIsRefused) {
  TempDir dir;
  const std::string path = dir.file("other.db");
  raw_sql(path, "CREATE TABLE domains (id INTEGER PRIMARY KEY, name TEXT)");
  EXPECT_EQ(open_error(path).code(), Status::Code::kStoreError);
  auto init = Store::init(path);
  ASSERT_FALSE(init.ok());
  EXPECT_NE(init.status().message().find("not a smimea store"), std::string::npos)
      << init.status().message();
  EXPECT_EQ(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE name = 'zones'"), 0);
}

TEST(StoreOpen, NewerSchemaIsRefusedWithAClearMessage) {
  TempDir dir;
  const std::string path = dir.file("future.db");
  ASSERT_TRUE(Store::init(path).ok());
  raw_sql(path, "PRAGMA user_version = 99");
  const Status s = open_error(path);
  EXPECT_EQ(s.code(), Status::Code::kStoreError);
  EXPECT_NE(s.message().find("99"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("newer"), std::string::npos) << s.message();
  auto init = Store::init(path);
  ASSERT_FALSE(init.ok());
  EXPECT_NE(init.status().message().find("newer"), std::string::npos) << init.status().message();
  EXPECT_EQ(raw_sql(path, "PRAGMA user_version"), 99);
}

TEST(StoreOpen, ReadOnlyCannotWrite) {
  StoreFixture f;
  StoreOptions options;
  options.read_only = true;
  auto reader = Store::open(f.path(), options);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  // Either the transaction or the insert is refused; nothing reaches the file.
  if ((*reader)->begin().ok()) {
    auto zone = (*reader)->add_zone("example.com", ZoneMode::kAuthoritative);
    EXPECT_FALSE(zone.ok());
    (*reader)->rollback();
  }
  EXPECT_EQ(count_rows(f.path(), "zones"), 0);
}

TEST(StoreOpen, IntegrityCheck) {
  StoreFixture f;
  EXPECT_TRUE(f.store().integrity_check().ok());
}

// --- zones ---

TEST(StoreZones, AddFindListRemove) {
  StoreFixture f;
  const auto zones = f.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                  {"_smimecert.example.org", ZoneMode::kAuthoritative},
                                  {"example.net", ZoneMode::kOverlay}});
  ASSERT_EQ(zones.size(), 3u);
  EXPECT_EQ(zones[0].name, "example.com");
  EXPECT_GT(zones[0].serial, 0u);
  EXPECT_FALSE(zones[0].has_records);
  EXPECT_EQ(zones[2].mode, ZoneMode::kOverlay);

  std::vector<Zone> loaded;
  ASSERT_TRUE(f.store().load_zones(&loaded).ok());
  ASSERT_EQ(loaded.size(), 3u);  // by name
  EXPECT_EQ(loaded[0].name, "_smimecert.example.org");
  EXPECT_EQ(loaded[1].name, "example.com");
  EXPECT_EQ(loaded[2].name, "example.net");
  EXPECT_EQ(loaded[2].mode, ZoneMode::kOverlay);
  EXPECT_EQ(loaded[1].notified_serial, -1);

  auto missing = f.store().find_zone("example.info");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().is_not_found());

  ASSERT_TRUE(f.store().begin().ok());
  auto removed = f.store().remove_zone("example.net", false);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 0);
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(count_rows(f.path(), "zones"), 2);
}

TEST(StoreZones, DuplicateIsAConflict) {
  StoreFixture f;
  f.add_zones({{"example.com", ZoneMode::kAuthoritative}});
  ASSERT_TRUE(f.store().begin().ok());
  auto again = f.store().add_zone("example.com", ZoneMode::kOverlay);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kConflict);
  f.store().rollback();
  EXPECT_EQ(count_rows(f.path(), "zones"), 1);
}

TEST(StoreZones, RemoveMissingZoneIsNotFound) {
  StoreFixture f;
  ASSERT_TRUE(f.store().begin().ok());
  auto removed = f.store().remove_zone("example.com", true);
  ASSERT_FALSE(removed.ok());
  EXPECT_TRUE(removed.status().is_not_found());
  f.store().rollback();
}

TEST(StoreZones, RemoveZoneWithCertificatesNeedsForce) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  ASSERT_EQ(f.add(zone, new_certificate("rsa.pem", "alice@example.com")), 1);

  ASSERT_TRUE(f.store().begin().ok());
  auto refused = f.store().remove_zone("example.com", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kConflict);
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos);
  f.store().rollback();
  EXPECT_EQ(count_rows(f.path(), "certificates"), 1);

  ASSERT_TRUE(f.store().begin().ok());
  auto removed = f.store().remove_zone("example.com", true);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 1);
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(count_rows(f.path(), "zones"), 0);
  EXPECT_EQ(count_rows(f.path(), "certificates"), 0);
  EXPECT_EQ(count_rows(f.path(), "records"), 0);
  EXPECT_TRUE(f.store().integrity_check().ok());
}

// --- certificates ---

TEST(StoreCertificates, AddStoresEverything) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  const NewCertificate cert = new_certificate(
      "ec.pem", "Bob.Smith@example.com",
      {RecordParams{}, RecordParams{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256}});
  ASSERT_EQ(cert.records.size(), 4u);  // two owners (exact, lower-cased) x two sets
  EXPECT_EQ(f.add(zone, cert), 4);
  EXPECT_EQ(count_rows(f.path(), "certificates"), 1);
  EXPECT_EQ(count_rows(f.path(), "records"), 4);
  EXPECT_EQ(raw_sql(f.path(),
                    "SELECT count(*) FROM certificates WHERE address = "
                    "'Bob.Smith@example.com' AND domain = 'example.com' AND "
                    "hex(fingerprint) = upper('" +
                        test::expected_hex("ec", 0, 1) + "')"),
            1);
  // The association data as openssl computed it.
  EXPECT_EQ(raw_sql(f.path(),
                    "SELECT count(*) FROM records WHERE selector = 1 AND "
                    "matching_type = 1 AND hex(data) = upper('" +
                        test::expected_hex("ec", 1, 1) + "')"),
            2);
  EXPECT_EQ(raw_sql(f.path(),
                    "SELECT count(*) FROM records WHERE selector = 0 AND "
                    "matching_type = 0 AND hex(data) = upper('" +
                        test::expected_hex("ec", 0, 0) + "')"),
            2);
  // Owners: printf 'Bob.Smith' | sha256sum, printf 'bob.smith' | sha256sum.
  EXPECT_EQ(raw_sql(f.path(),
                    "SELECT count(DISTINCT owner) FROM records WHERE hex(owner) IN "
                    "(upper('274c9d19d98772457ec3e83af4fc93090845450055fa0f6e8542a5b2'),"
                    " upper('365b77fb7cc563593e66aba9d9616834f73a2033cded0f6eb106c168'))"),
            2);

  auto listed = f.store().list_certificates("", "");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  const CertInfo& info = listed->front();
  EXPECT_EQ(info.address, "Bob.Smith@example.com");
  EXPECT_EQ(info.zone, "example.com");
  EXPECT_EQ(to_hex(info.fingerprint), test::expected_hex("ec", 0, 1));
  EXPECT_EQ(info.subject, "CN=Bob");
  ASSERT_EQ(info.records.size(), 4u);
  EXPECT_EQ(info.records[0].owner_name,
            "274c9d19d98772457ec3e83af4fc93090845450055fa0f6e8542a5b2._smimecert.example.com.");
  EXPECT_EQ(info.records[0].data.size(), test::expected_hex("ec", 0, 0).size() / 2);
  EXPECT_EQ(info.records[1].data.size(), 32u);
}

TEST(StoreCertificates, AddingTheSameCertificateTwiceChangesNothing) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  const NewCertificate cert = new_certificate("rsa.pem", "alice@example.com");
  ASSERT_EQ(f.add(zone, cert), 1);
  const std::uint32_t serial = f.zone("example.com").serial;
  EXPECT_EQ(f.add(zone, cert), 0);
  EXPECT_EQ(f.zone("example.com").serial, serial);
  EXPECT_EQ(count_rows(f.path(), "certificates"), 1);
  EXPECT_EQ(count_rows(f.path(), "records"), 1);
}

TEST(StoreCertificates, SerialMovesOnEveryChange) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                 {"example.org", ZoneMode::kAuthoritative}})
                        .front();
  const std::uint32_t s0 = f.zone("example.com").serial;
  const std::uint32_t other = f.zone("example.org").serial;
  ASSERT_EQ(f.add(zone, new_certificate("rsa.pem", "alice@example.com")), 1);
  const std::uint32_t s1 = f.zone("example.com").serial;
  EXPECT_GT(s1, s0);
  ASSERT_EQ(f.add(zone, new_certificate("ec.pem", "bob@example.com")), 1);
  const std::uint32_t s2 = f.zone("example.com").serial;
  EXPECT_GT(s2, s1);
  ASSERT_TRUE(f.store().begin().ok());
  auto removed = f.store().remove_certificates("alice@example.com", std::nullopt);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_GT(f.zone("example.com").serial, s2);
  EXPECT_EQ(f.zone("example.org").serial, other);  // untouched zone
}

TEST(StoreCertificates, SerialWrapsPerRfc1982) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  raw_sql(f.path(), "UPDATE zones SET serial = 4294967295");
  ASSERT_EQ(f.add(zone, new_certificate("rsa.pem", "alice@example.com")), 1);
  EXPECT_EQ(f.zone("example.com").serial, 0u);
}

TEST(StoreCertificates, RollbackLeavesNothing) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  const std::uint32_t serial = f.zone("example.com").serial;
  ASSERT_TRUE(f.store().begin().ok());
  ASSERT_TRUE(
      f.store().add_certificate(zone, new_certificate("rsa.pem", "alice@example.com")).ok());
  f.store().rollback();
  EXPECT_EQ(count_rows(f.path(), "certificates"), 0);
  EXPECT_EQ(count_rows(f.path(), "records"), 0);
  EXPECT_EQ(f.zone("example.com").serial, serial);
}

TEST(StoreCertificates, RrsetCapIsAConflict) {
  StoreOptions options;
  options.max_rrset_bytes = 1500;  // one 3 0 0 record of the RSA certificate (825 + 15 octets)
  StoreFixture f(options);
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  ASSERT_EQ(f.add(zone, new_certificate("rsa.pem", "alice@example.com")), 1);
  const std::uint32_t serial = f.zone("example.com").serial;

  // A second certificate for the same owner makes the RRset 840 + 461 octets: fits.
  ASSERT_EQ(f.add(zone, new_certificate("ec.pem", "alice@example.com")), 1);
  // A third (380 octets) does not.
  ASSERT_TRUE(f.store().begin().ok());
  auto refused =
      f.store().add_certificate(zone, new_certificate("ed25519.pem", "alice@example.com"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kConflict);
  EXPECT_NE(refused.status().message().find(
                "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db._smimecert.example.com."),
            std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("max-rrset-bytes"), std::string::npos);
  f.store().rollback();
  EXPECT_EQ(count_rows(f.path(), "certificates"), 2);
  EXPECT_EQ(count_rows(f.path(), "records"), 2);
  EXPECT_GT(f.zone("example.com").serial, serial);

  // Small records still fit next to them.
  EXPECT_EQ(f.add(zone, new_certificate("ed25519.pem", "alice@example.com",
                                        {RecordParams{Usage::kDaneEe, Selector::kSpki,
                                                      MatchingType::kSha256}})),
            1);
}

TEST(StoreCertificates, RefusedCertificateLeavesNothingInTheTransaction) {
  // cert import goes on after a refused certificate and commits the others: the refused one
  // must leave no row behind, not its certificate row nor the records before the one refused.
  StoreOptions options;
  options.max_rrset_bytes = 1024;
  StoreFixture f(options);
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  const std::uint32_t serial = f.zone("example.com").serial;
  ASSERT_TRUE(f.store().begin().ok());
  // 3 0 0 (840 octets) fits, 3 1 0 (309 more) does not.
  auto refused = f.store().add_certificate(
      zone, new_certificate("rsa.pem", "alice@example.com",
                            {RecordParams{},
                             RecordParams{Usage::kDaneEe, Selector::kSpki, MatchingType::kExact}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kConflict);
  auto other = f.store().add_certificate(zone, new_certificate("ec.pem", "bob@example.com"));
  ASSERT_TRUE(other.ok()) << other.status().message();
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(count_rows(f.path(), "certificates"), 1);
  EXPECT_EQ(count_rows(f.path(), "records"), 1);
  EXPECT_EQ(
      raw_sql(f.path(), "SELECT count(*) FROM certificates WHERE address = 'bob@example.com'"), 1);
  EXPECT_GT(f.zone("example.com").serial, serial);
}

TEST(StoreCertificates, RefusedRecordForAStoredCertificateLeavesItAsItWas) {
  StoreOptions options;
  options.max_rrset_bytes = 1024;
  StoreFixture f(options);
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  ASSERT_EQ(f.add(zone, new_certificate("rsa.pem", "alice@example.com")), 1);
  const std::uint32_t serial = f.zone("example.com").serial;
  ASSERT_TRUE(f.store().begin().ok());
  auto refused = f.store().add_certificate(
      zone, new_certificate("rsa.pem", "alice@example.com",
                            {RecordParams{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256},
                             RecordParams{Usage::kDaneEe, Selector::kSpki, MatchingType::kExact}}));
  ASSERT_FALSE(refused.ok());
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(count_rows(f.path(), "certificates"), 1);
  EXPECT_EQ(count_rows(f.path(), "records"), 1);
  EXPECT_EQ(f.zone("example.com").serial, serial);
}

TEST(StoreCertificates, RrsetCapCountsOnlyThatOwner) {
  StoreOptions options;
  options.max_rrset_bytes = 1024;
  StoreFixture f(options);
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  EXPECT_EQ(f.add(zone, new_certificate("rsa.pem", "alice@example.com")), 1);
  EXPECT_EQ(f.add(zone, new_certificate("rsa.pem", "alice2@example.com")), 1);
  EXPECT_EQ(f.add(zone, new_certificate("ec.pem", "bob@example.com")), 1);
}

// The published RRset of one owner, as the read side sees it.
std::vector<std::string> rrset(Store& store, std::int64_t zone_id, std::string_view local_part);

TEST(StoreCertificates, RenewalWithTheSameKeyKeepsTheSpkiRecord) {
  // ec.pem and subject_email.pem share their key (tests/data/README.md), so their 3 1 1
  // records are the same RR. Removing the old certificate must not withdraw it.
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  const std::vector<RecordParams> spki{{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256}};
  EXPECT_EQ(f.add(zone, new_certificate("ec.pem", "dave@example.com", spki)), 1);
  f.add(zone, new_certificate("subject_email.pem", "dave@example.com", spki));
  const std::vector<std::string> expected{"3 1 1 " + test::expected_hex("ec", 1, 1)};
  EXPECT_EQ(rrset(f.store(), zone.id, "dave"), expected);
  ASSERT_TRUE(f.store().begin().ok());
  auto removed = f.store().remove_certificates(
      "dave@example.com",
      std::optional<std::array<std::uint8_t, 32>>(test::load_certificate("ec.pem").fingerprint));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(rrset(f.store(), zone.id, "dave"), expected);
}

TEST(StoreCertificates, DuplicateRecordDoesNotCountAgainstTheCap) {
  // ec.pem and subject_email.pem share their key: one 3 1 1 RR (32 + 15 octets) for both.
  StoreOptions options;
  options.max_rrset_bytes = 50;
  StoreFixture f(options);
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  const std::vector<RecordParams> spki{{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256}};
  EXPECT_EQ(f.add(zone, new_certificate("ec.pem", "dave@example.com", spki)), 1);
  EXPECT_EQ(f.add(zone, new_certificate("subject_email.pem", "dave@example.com", spki)), 1);
  EXPECT_EQ(count_rows(f.path(), "certificates"), 2);
}

TEST(StoreCertificates, RemoveByFingerprint) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  f.add(zone, new_certificate("rsa.pem", "alice@example.com"));
  f.add(zone, new_certificate("ec.pem", "alice@example.com"));
  f.add(zone, new_certificate("ec.pem", "bob@example.com"));
  std::array<std::uint8_t, 32> fp{};
  ASSERT_TRUE(decode_hex(test::expected_hex("ec", 0, 1), fp.data(), fp.size()));

  ASSERT_TRUE(f.store().begin().ok());
  auto removed = f.store().remove_certificates("alice@example.com", fp);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  ASSERT_TRUE(f.store().commit().ok());
  auto alice = f.store().list_certificates("alice@example.com", "");
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->size(), 1u);
  EXPECT_EQ(to_hex(alice->front().fingerprint), test::expected_hex("rsa", 0, 1));
  EXPECT_EQ(count_rows(f.path(), "records"), 2);

  ASSERT_TRUE(f.store().begin().ok());
  auto none = f.store().remove_certificates("carol@example.com", std::nullopt);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  f.store().rollback();

  ASSERT_TRUE(f.store().begin().ok());
  auto all = f.store().remove_certificates("alice@example.com", std::nullopt);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 1);
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(count_rows(f.path(), "certificates"), 1);
  EXPECT_EQ(count_rows(f.path(), "records"), 1);
}

TEST(StoreCertificates, ListFilters) {
  StoreFixture f;
  const auto zones = f.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                  {"_smimecert.example.org", ZoneMode::kAuthoritative}});
  f.add(zones[0], new_certificate("rsa.pem", "alice@example.com"));
  f.add(zones[0], new_certificate("ec.pem", "bob@example.com"));
  f.add(zones[1], new_certificate("ed25519.pem", "carol@example.org"));
  auto all = f.store().list_certificates("", "");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].address, "alice@example.com");
  EXPECT_EQ((*all)[1].address, "bob@example.com");
  EXPECT_EQ((*all)[2].address, "carol@example.org");
  EXPECT_EQ((*all)[2].zone, "_smimecert.example.org");
  EXPECT_EQ((*all)[2].records.at(0).owner_name,
            "4c26d9074c27d89ede59270c0ac14b71e071b15239519f75474b2f3b._smimecert.example.org.");
  auto com = f.store().list_certificates("", "example.com");
  ASSERT_TRUE(com.ok());
  EXPECT_EQ(com->size(), 2u);
  auto bob = f.store().list_certificates("bob@example.com", "");
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 1u);
  auto none = f.store().list_certificates("bob@example.com", "_smimecert.example.org");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Both filters, the address in another case: the address's index, then the zone.
  auto both = f.store().list_certificates("BOB@example.com", "example.com");
  ASSERT_TRUE(both.ok());
  ASSERT_EQ(both->size(), 1u);
  EXPECT_EQ((*both)[0].address, "bob@example.com");
  auto carol = f.store().list_certificates("Carol@Example.org", "");
  ASSERT_TRUE(carol.ok());
  ASSERT_EQ(carol->size(), 1u);
  EXPECT_EQ((*carol)[0].zone, "_smimecert.example.org");
}

class Collect : public RecordVisitor {
 public:
  void visit(const RecordView& r) override {
    lines.push_back(to_hex(*r.owner) + " " + std::to_string(static_cast<int>(r.params.usage)) +
                    " " + std::to_string(static_cast<int>(r.params.selector)) + " " +
                    std::to_string(static_cast<int>(r.params.matching_type)) + " " +
                    std::to_string(r.ttl) + " " + to_hex(r.data, r.size));
  }
  std::vector<std::string> lines;
};

std::vector<std::string> rrset(Store& store, std::int64_t zone_id, std::string_view local_part) {
  Collect c;
  const Status s = test::visit_records(store, zone_id, owner_hash(local_part), c);
  EXPECT_TRUE(s.ok()) << s.message();
  std::vector<std::string> out;
  for (const std::string& line : c.lines) {
    // "<owner hex> u s m ttl hex" -> "u s m hex"
    const std::size_t ttl_end = line.find(' ', 2 * kOwnerHashLen + 7);
    out.push_back(line.substr(2 * kOwnerHashLen + 1, 6) + line.substr(ttl_end + 1));
  }
  return out;
}

TEST(StoreRead, FindRecordsAndListZone) {
  StoreFixture f;
  const auto zones = f.add_zones(
      {{"example.com", ZoneMode::kAuthoritative}, {"example.org", ZoneMode::kAuthoritative}});
  const RecordParams spki256{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256};
  f.add(zones[0], new_certificate("rsa.pem", "alice@example.com", {spki256}, 600));
  f.add(zones[0], new_certificate("ec.pem", "bob@example.com", {spki256}, 700));
  f.add(zones[1], new_certificate("ed25519.pem", "alice@example.org", {spki256}, 800));

  Collect alice;
  ASSERT_TRUE(test::visit_records(f.store(), zones[0].id, owner_hash("alice"), alice).ok());
  EXPECT_EQ(alice.lines, std::vector<std::string>{
                             "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db 3 1 1 600 " +
                             test::expected_hex("rsa", 1, 1)});
  Collect none;
  ASSERT_TRUE(test::visit_records(f.store(), zones[0].id, owner_hash("carol"), none).ok());
  EXPECT_TRUE(none.lines.empty());

  // Listed by owner: alice (2bd8...) before bob (81b6...).
  Collect list;
  ASSERT_TRUE(f.store().list_zone(zones[0].id, list).ok());
  ASSERT_EQ(list.lines.size(), 2u);
  EXPECT_EQ(list.lines[0].substr(0, 8), "2bd806c9");
  EXPECT_EQ(list.lines[1].substr(0, 8), "81b637d8");
  EXPECT_EQ(list.lines[1], "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd 3 1 1 700 " +
                               test::expected_hex("ec", 1, 1));
}

TEST(StoreRead, DataChangedSeesOtherConnections) {
  StoreFixture f;
  StoreOptions options;
  options.read_only = true;
  auto reader = Store::open(f.path(), options);
  ASSERT_TRUE(reader.ok());
  auto first = (*reader)->data_changed();
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  auto second = (*reader)->data_changed();
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  f.add_zones({{"example.com", ZoneMode::kAuthoritative}});
  auto third = (*reader)->data_changed();
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(*third);
  std::vector<Zone> zones;
  ASSERT_TRUE((*reader)->load_zones(&zones).ok());
  EXPECT_EQ(zones.size(), 1u);
}

TEST(StoreRead, HasRecordsFollowsTheRecords) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  EXPECT_FALSE(f.zone("example.com").has_records);
  f.add(zone, new_certificate("rsa.pem", "alice@example.com"));
  EXPECT_TRUE(f.zone("example.com").has_records);
}

}  // namespace
}  // namespace smimea
