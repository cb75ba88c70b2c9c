// PdnsCalls: what PowerDNS's backend calls mean, as both pdns adapters get it (an answer, "no"
// or "failed"), over a real store in a temporary directory. Store errors are made with raw
// SQL (sqlite3.h) on the file, independently of the code under test.
#include "smimea/pdns_semantics.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "../store_util.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::StoreFixture;

// Runs sql on the store file through a connection of its own.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (message != nullptr ? message : "");
  sqlite3_free(message);
  sqlite3_close(db);
}

template <class T>
void expect_quiet_no(const Outcome<T>& outcome, const char* what) {
  EXPECT_EQ(outcome.kind(), OutcomeKind::kNo) << what << ": " << outcome.message();
  EXPECT_FALSE(outcome.logged()) << what;
  EXPECT_EQ(outcome.message(), "") << what;
}

class PdnsCallsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.database = fixture_.path();
    zones_ = fixture_.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                 {"example.net", ZoneMode::kOverlay},
                                 {"native.example", ZoneMode::kAuthoritative}});
    ASSERT_TRUE(fixture_.store().begin().ok());
    ASSERT_TRUE(fixture_.store().set_zone_kind("native.example", ZoneKind::kNative).ok());
    ASSERT_TRUE(fixture_.store().commit().ok());
    auto calls = PdnsCalls::open(config_);
    ASSERT_TRUE(calls.ok()) << calls.status().message();
    calls_ = std::move(calls).value();
  }

  std::int64_t id_of(const std::string& zone) { return fixture_.zone(zone).id; }

  StoreFixture fixture_;
  Config config_;
  std::vector<Zone> zones_;
  std::unique_ptr<PdnsCalls> calls_;
};

DomainKey a_key() {
  DomainKey k;
  k.flags = 257;
  k.active = true;
  k.content = "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AA==\n";
  return k;
}

TEST_F(PdnsCallsTest, ZoneNotInTheStoreIsNo) {
  expect_quiet_no(calls_->domain_info("other.example."), "getDomainInfo");
  expect_quiet_no(calls_->domain_keys("other.example"), "getDomainKeys");
  expect_quiet_no(calls_->all_domain_metadata("other.example"), "getAllDomainMetadata");
  expect_quiet_no(calls_->domain_metadata("other.example", "NSEC3PARAM"), "getDomainMetadata");
  expect_quiet_no(calls_->list("other.example"), "list");
  expect_quiet_no(calls_->start_transaction("other.example", -1), "startTransaction");
  expect_quiet_no(calls_->before_and_after(12345, std::vector<std::string>{}), "neighbours");
  // A write says why, for pdns's log; it is not an error of ours.
  auto added = calls_->add_domain_key("other.example", a_key());
  EXPECT_EQ(added.kind(), OutcomeKind::kNo);
  EXPECT_FALSE(added.logged());
  EXPECT_NE(added.message().find("addDomainKey: other.example"), std::string::npos)
      << added.message();
}

TEST_F(PdnsCallsTest, OverlayZoneIsNo) {
  expect_quiet_no(calls_->domain_info("example.net"), "getDomainInfo");
  expect_quiet_no(calls_->domain_keys("example.net"), "getDomainKeys");
  expect_quiet_no(calls_->all_domain_metadata("EXAMPLE.net."), "getAllDomainMetadata");
  expect_quiet_no(calls_->list("example.net"), "list");
  expect_quiet_no(calls_->start_transaction("example.net", -1), "startTransaction");
  expect_quiet_no(calls_->before_and_after(id_of("example.net"), std::vector<std::string>{}),
                  "neighbours");
  auto set = calls_->set_domain_metadata("example.net", "NSEC3PARAM", {"1 0 0 -"});
  EXPECT_EQ(set.kind(), OutcomeKind::kNo);
  EXPECT_FALSE(set.logged());
  EXPECT_NE(set.message().find("overlay zone"), std::string::npos) << set.message();

  // getAllDomains lists the authoritative zones only.
  auto all = calls_->all_domains();
  ASSERT_TRUE(all.answered()) << all.message();
  std::vector<std::string> names;
  for (const ZoneInfo& z : *all) names.push_back(z.fqdn);
  EXPECT_EQ(names, (std::vector<std::string>{"example.com.", "native.example."}));
}

TEST_F(PdnsCallsTest, OurZoneIsAnswered) {
  auto info = calls_->domain_info("Example.COM.");
  ASSERT_TRUE(info.answered()) << info.message();
  EXPECT_EQ(info->fqdn, "example.com.");
  EXPECT_EQ(info->id, id_of("example.com"));
  EXPECT_EQ(info->kind, ZoneKind::kMaster);
  EXPECT_EQ(info->notified_serial, 0U);  // never notified
  auto keys = calls_->domain_keys("example.com");
  ASSERT_TRUE(keys.answered()) << keys.message();
  EXPECT_TRUE(keys->empty());
  auto listing = calls_->list("example.com.");
  ASSERT_TRUE(listing.answered()) << listing.message();
  EXPECT_EQ((*listing)->zone().zone.name, "example.com");
}

TEST_F(PdnsCallsTest, StoreErrorOnAReadPdnsActsOnFails) {
  // pdns fills its zone cache first: the zone table is what tells ours from another's.
  ASSERT_TRUE(calls_->all_domains().answered());
  raw_exec(fixture_.path(), "DROP TABLE domain_keys; DROP TABLE domain_metadata");

  auto keys = calls_->domain_keys("example.com");
  EXPECT_TRUE(keys.failed());
  EXPECT_TRUE(keys.logged());
  EXPECT_NE(keys.message().find("getDomainKeys: "), std::string::npos) << keys.message();
  auto meta = calls_->all_domain_metadata("example.com");
  EXPECT_TRUE(meta.failed()) << meta.message();
  // A zone not in our table stays another backend's, whatever the store says.
  expect_quiet_no(calls_->domain_keys("other.example"), "getDomainKeys of another zone");
  // getDomainMetadata comes from pdns's communicator thread too: a logged "no".
  auto one = calls_->domain_metadata("example.com", "TSIG-ALLOW-AXFR");
  EXPECT_EQ(one.kind(), OutcomeKind::kNo);
  EXPECT_TRUE(one.logged());
  EXPECT_NE(one.message().find("getDomainMetadata: "), std::string::npos) << one.message();
}

TEST_F(PdnsCallsTest, StoreErrorOnTheZoneTable) {
  raw_exec(fixture_.path(), "PRAGMA foreign_keys=OFF; DROP TABLE records; DROP TABLE zones");
  // An empty list would empty pdns's zone cache: failed.
  auto all = calls_->all_domains();
  EXPECT_TRUE(all.failed());
  EXPECT_NE(all.message().find("getAllDomains: "), std::string::npos) << all.message();
  // The communicator thread's calls: a logged "no".
  auto info = calls_->domain_info("example.com");
  EXPECT_EQ(info.kind(), OutcomeKind::kNo);
  EXPECT_TRUE(info.logged());
  auto updated = calls_->updated_masters();
  EXPECT_EQ(updated.kind(), OutcomeKind::kNo);
  EXPECT_TRUE(updated.logged());
  EXPECT_NE(updated.message().find("getUpdatedMasters: "), std::string::npos) << updated.message();
  // pdns would sign an NSEC from the apex to the apex: failed.
  EXPECT_TRUE(calls_->before_and_after(1, std::vector<std::string>{}).failed());
}

TEST_F(PdnsCallsTest, StartTransactionWithAZoneIdIsRefused) {
  auto refused = calls_->start_transaction("example.com", id_of("example.com"));
  EXPECT_EQ(refused.kind(), OutcomeKind::kNo);
  EXPECT_TRUE(refused.logged());
  EXPECT_EQ(refused.message(),
            "startTransaction: example.com: zone records are managed with smimea-ctl; pdns cannot "
            "replace them");
  EXPECT_FALSE(calls_->in_transaction());
  expect_quiet_no(calls_->commit_transaction(), "commit without a transaction");

  // Without a zone id: pdnsutil's key and metadata writes, in one transaction.
  ASSERT_TRUE(calls_->start_transaction("example.com.", -1).answered());
  EXPECT_TRUE(calls_->in_transaction());
  ASSERT_TRUE(calls_->add_domain_key("example.com", a_key()).answered());
  ASSERT_TRUE(calls_->abort_transaction().answered());
  EXPECT_FALSE(calls_->in_transaction());
  auto keys = calls_->domain_keys("example.com");
  ASSERT_TRUE(keys.answered());
  EXPECT_TRUE(keys->empty());
}

TEST_F(PdnsCallsTest, Nsec3WithoutNarrowIsRefusedWithTheFix) {
  const std::int64_t id = id_of("example.com");
  const std::vector<std::string> hashed{"0123456789abcdefghijklmnopqrstuv"};
  // Plain NSEC (no NSEC3PARAM): the label is a name like any other.
  auto plain = calls_->before_and_after(id, hashed);
  ASSERT_TRUE(plain.answered()) << plain.message();
  EXPECT_EQ(plain->before, "");
  EXPECT_EQ(plain->after, "");

  ASSERT_TRUE(calls_->set_domain_metadata("example.com", "NSEC3PARAM", {"1 0 0 -"}).answered());
  auto refused = calls_->before_and_after(id, hashed);
  EXPECT_TRUE(refused.failed());
  EXPECT_EQ(refused.message(),
            "zone example.com uses NSEC3 without narrow, which this backend does not support: "
            "run pdnsutil set-nsec3 example.com '1 0 0 -' narrow");
  // The same through the name as text.
  auto text = calls_->before_and_after(id, std::string_view("0123456789ABCDEFGHIJKLMNOPQRSTUV"));
  EXPECT_TRUE(text.failed());
  EXPECT_EQ(text.message(), refused.message());
  // A malformed name fails, for a zone of ours.
  EXPECT_TRUE(calls_->before_and_after(id, std::string_view("a..b")).failed());
}

TEST_F(PdnsCallsTest, UpdatedMastersAreMasterZonesWhoseSerialMoved) {
  auto names = [&] {
    auto zones = calls_->updated_masters();
    EXPECT_TRUE(zones.answered()) << zones.message();
    std::vector<std::string> out;
    if (zones.answered()) {
      for (const ZoneInfo& z : *zones) out.push_back(z.fqdn);
    }
    return out;
  };
  // Never announced: the master zone; not the native one, not the overlay.
  EXPECT_EQ(names(), (std::vector<std::string>{"example.com."}));

  const Zone zone = fixture_.zone("example.com");
  ASSERT_TRUE(calls_->set_notified(zone.id, zone.serial).answered());
  EXPECT_EQ(names(), std::vector<std::string>{});

  // The serial moves with a new certificate: announced again.
  fixture_.add(zone, new_certificate("rsa.pem", "alice@example.com"));
  EXPECT_EQ(names(), (std::vector<std::string>{"example.com."}));
  auto info = calls_->domain_info("example.com");
  ASSERT_TRUE(info.answered());
  EXPECT_EQ(info->notified_serial, zone.serial);
  EXPECT_NE(info->serial, zone.serial);
}

TEST_F(PdnsCallsTest, TsigKeyOfAnotherAlgorithmIsNo) {
  ASSERT_TRUE(calls_->set_tsig_key({"xfr-key.", "hmac-sha256.", "c2VjcmV0"}).answered());
  // No algorithm asked for (what pdns 4.7 always asks): the key whatever its algorithm.
  auto any = calls_->tsig_key("XFR-key.", "");
  ASSERT_TRUE(any.answered()) << any.message();
  EXPECT_EQ(any->algorithm, "hmac-sha256");
  EXPECT_EQ(any->secret, "c2VjcmV0");
  // The same algorithm, spelled as a DNS name in any case.
  EXPECT_TRUE(calls_->tsig_key("xfr-key", "HMAC-SHA256.").answered());
  EXPECT_TRUE(calls_->tsig_key("xfr-key", "hmac-sha256").answered());
  // Another algorithm: a quiet no (another backend may have that key).
  expect_quiet_no(calls_->tsig_key("xfr-key", "hmac-sha512"), "another algorithm");
  expect_quiet_no(calls_->tsig_key("no-such-key", ""), "no such key");

  auto keys = calls_->tsig_keys();
  ASSERT_TRUE(keys.answered());
  ASSERT_EQ(keys->size(), 1U);
  ASSERT_TRUE(calls_->delete_tsig_key("xfr-key").answered());
  expect_quiet_no(calls_->tsig_key("xfr-key", ""), "deleted key");
}

TEST_F(PdnsCallsTest, BackendCommandStatus) {
  auto status = calls_->backend_command("status", {7, 2});
  ASSERT_TRUE(status.answered());
  EXPECT_NE(status->find("zones 3 (2 authoritative)"), std::string::npos) << *status;
  EXPECT_NE(status->find("requests 7, lookups 0, failures 2"), std::string::npos) << *status;
  auto help = calls_->backend_command("", {});
  ASSERT_TRUE(help.answered());
  EXPECT_EQ(help->rfind("commands: status", 0), 0U) << *help;
  auto unknown = calls_->backend_command("frobnicate", {});
  ASSERT_TRUE(unknown.answered());
  EXPECT_EQ(*unknown, "unknown command 'frobnicate'; try: help");
}

TEST_F(PdnsCallsTest, TheCatalogIsAMasterZoneOfIdZero) {
  config_.catalog = "catalog.invalid";
  auto opened = PdnsCalls::open(config_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  PdnsCalls& calls = **opened;
  auto all = calls.all_domains();
  ASSERT_TRUE(all.answered()) << all.message();
  std::vector<std::string> names;
  for (const ZoneInfo& z : *all) names.push_back(z.fqdn + " " + std::to_string(z.id));
  EXPECT_EQ(names, (std::vector<std::string>{
                       "catalog.invalid. 0", "example.com. " + std::to_string(id_of("example.com")),
                       "native.example. " + std::to_string(id_of("native.example"))}));
  auto info = calls.domain_info("Catalog.Invalid.");
  ASSERT_TRUE(info.answered());
  EXPECT_EQ(info->id, kCatalogZoneId);
  EXPECT_EQ(info->kind, ZoneKind::kMaster);
  // Announced until setNotified, and again when a zone is added.
  auto updated = [&] {
    std::vector<std::string> out;
    auto zones = calls.updated_masters();
    EXPECT_TRUE(zones.answered());
    if (zones.answered()) {
      for (const ZoneInfo& z : *zones) out.push_back(z.fqdn);
    }
    return out;
  };
  EXPECT_EQ(updated(), (std::vector<std::string>{"catalog.invalid.", "example.com."}));
  ASSERT_TRUE(calls.set_notified(kCatalogZoneId, info->serial).answered());
  EXPECT_EQ(updated(), std::vector<std::string>{"example.com."});
  fixture_.add_zones({{"new.example", ZoneMode::kAuthoritative}});
  EXPECT_EQ(updated(),
            (std::vector<std::string>{"catalog.invalid.", "example.com.", "new.example."}));
  // Transferred like a zone; not signed, no neighbours.
  auto listing = calls.list("catalog.invalid");
  ASSERT_TRUE(listing.answered()) << listing.message();
  expect_quiet_no(calls.before_and_after(kCatalogZoneId, std::vector<std::string>{}), "neighbours");
  expect_quiet_no(calls.domain_keys("catalog.invalid"), "getDomainKeys");
}

}  // namespace
}  // namespace smimea
