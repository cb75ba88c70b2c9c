// KeyStore: DNSSEC keys, domain metadata and transactions in the store, as PowerDNS's key and
// metadata calls use them; the owner reads of plain NSEC; the notified serial and TSIG keys of
// zone transfer; and the old store fixtures (versions 1 and 2) migrating to the current
// version with their data intact. Raw SQL (sqlite3.h) inspects files
// independently of the code under test.
#include "smimea/key_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "../sqlite_files.h"
#include "../store_util.h"
#include "../test_util.h"
#include "smimea/hex.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::raw_int;
using test::StoreFixture;
using test::TempDir;

// A key as pdnsutil hands it over (made-up material: the test only needs the text form).
const char* const kKeyContent =
    "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n"
    "PrivateKey: Lm8zVVxQhVkX7KW0bq8mbTQjq4bCb2dZ1d8zPm4fQhE=\n";

DomainKey key(std::uint32_t flags, bool active = true, bool published = true) {
  DomainKey k;
  k.flags = flags;
  k.active = active;
  k.published = published;
  k.content = kKeyContent;
  return k;
}

class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    zones_ = store_.add_zones({{"example.com", ZoneMode::kAuthoritative},
                               {"_smimecert.example.org", ZoneMode::kAuthoritative},
                               {"example.net", ZoneMode::kOverlay}});
    ASSERT_EQ(zones_.size(), 3u);
  }

  std::uint32_t serial(const std::string& zone) { return store_.zone(zone).serial; }

  StoreFixture store_;
  std::vector<Zone> zones_;
  std::unique_ptr<KeyStore> keys_ptr_ = KeyStore::create(store_.path());
  KeyStore& keys_ = *keys_ptr_;
};

TEST_F(KeyStoreTest, AddGetKeysRoundTrip) {
  auto empty = keys_.get_domain_keys("example.com");
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty->empty());

  auto ksk = keys_.add_domain_key("example.com.", key(257));
  auto zsk = keys_.add_domain_key("Example.COM", key(256, false, false));
  ASSERT_TRUE(ksk.ok()) << ksk.status().message();
  ASSERT_TRUE(zsk.ok()) << zsk.status().message();
  EXPECT_GE(*ksk, 1);
  EXPECT_GT(*zsk, *ksk);

  auto got = keys_.get_domain_keys("EXAMPLE.com.");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, *ksk);
  EXPECT_EQ((*got)[0].flags, 257u);
  EXPECT_TRUE((*got)[0].active);
  EXPECT_TRUE((*got)[0].published);
  EXPECT_EQ((*got)[0].content, kKeyContent);
  EXPECT_EQ((*got)[1].id, *zsk);
  EXPECT_EQ((*got)[1].flags, 256u);
  EXPECT_FALSE((*got)[1].active);
  EXPECT_FALSE((*got)[1].published);
  // Stored in the file, in the zone's row, as given.
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys WHERE zone_id = " +
                                       std::to_string(zones_[0].id)),
            2);
  // Another zone's keys are separate.
  auto other = keys_.get_domain_keys("_smimecert.example.org");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
}

TEST_F(KeyStoreTest, KeyIdsAreNeverReused) {
  auto a = keys_.add_domain_key("example.com", key(257));
  auto b = keys_.add_domain_key("example.com", key(256));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(keys_.remove_domain_key("example.com", *b).ok());
  auto c = keys_.add_domain_key("example.com", key(256));
  ASSERT_TRUE(c.ok());
  EXPECT_GT(*c, *b);
}

TEST_F(KeyStoreTest, ActivatePublishRemove) {
  auto id = keys_.add_domain_key("example.com", key(257, false, false));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(keys_.set_key_active("example.com", *id, true).ok());
  ASSERT_TRUE(keys_.set_key_published("example.com", *id, true).ok());
  auto got = keys_.get_domain_keys("example.com");
  ASSERT_TRUE(got.ok() && got->size() == 1);
  EXPECT_TRUE(got->front().active);
  EXPECT_TRUE(got->front().published);
  ASSERT_TRUE(keys_.set_key_active("example.com", *id, false).ok());
  ASSERT_TRUE(keys_.set_key_published("example.com", *id, false).ok());
  got = keys_.get_domain_keys("example.com");
  EXPECT_FALSE(got->front().active);
  EXPECT_FALSE(got->front().published);

  // A key id of another zone, or no key at all: NotFound, nothing changes.
  EXPECT_EQ(keys_.set_key_active("_smimecert.example.org", *id, true).code(),
            Status::Code::kNotFound);
  EXPECT_EQ(keys_.remove_domain_key("_smimecert.example.org", *id).code(), Status::Code::kNotFound);
  EXPECT_EQ(keys_.remove_domain_key("example.com", *id + 100).code(), Status::Code::kNotFound);
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys"), 1);

  ASSERT_TRUE(keys_.remove_domain_key("example.com", *id).ok());
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys"), 0);
}

TEST_F(KeyStoreTest, UnknownAndOverlayZonesAreRefused) {
  auto unknown = keys_.add_domain_key("example.invalid", key(257));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
  auto overlay = keys_.add_domain_key("example.net", key(257));
  ASSERT_FALSE(overlay.ok());
  EXPECT_EQ(overlay.status().code(), Status::Code::kConflict);
  EXPECT_NE(overlay.status().message().find("overlay"), std::string::npos);
  // Key material never appears in a message.
  EXPECT_EQ(overlay.status().message().find("PrivateKey"), std::string::npos);
  EXPECT_EQ(keys_.get_domain_keys("example.net").status().code(), Status::Code::kConflict);
  EXPECT_EQ(keys_.get_all_domain_metadata("example.net").status().code(), Status::Code::kConflict);
  EXPECT_EQ(keys_.get_domain_metadata("nope.example", "NSEC3PARAM").status().code(),
            Status::Code::kNotFound);
  EXPECT_EQ(keys_.set_domain_metadata("example.net", "NSEC3NARROW", {"1"}).code(),
            Status::Code::kConflict);
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys"), 0);
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_metadata"), 0);
}

TEST_F(KeyStoreTest, MetadataSetGetDelete) {
  ASSERT_TRUE(keys_.set_domain_metadata("example.com.", "NSEC3PARAM", {"1 0 0 -"}).ok());
  ASSERT_TRUE(keys_.set_domain_metadata("example.com", "NSEC3NARROW", {"1"}).ok());
  ASSERT_TRUE(keys_
                  .set_domain_metadata("example.com", "ALSO-NOTIFY",
                                       {"192.0.2.1", "192.0.2.2:5300", "192.0.2.3"})
                  .ok());
  auto all = keys_.get_all_domain_metadata("example.com");
  ASSERT_TRUE(all.ok()) << all.status().message();
  const DomainMetadata want = {{"ALSO-NOTIFY", {"192.0.2.1", "192.0.2.2:5300", "192.0.2.3"}},
                               {"NSEC3NARROW", {"1"}},
                               {"NSEC3PARAM", {"1 0 0 -"}}};
  EXPECT_EQ(*all, want);
  auto one = keys_.get_domain_metadata("example.com", "ALSO-NOTIFY");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, want.at("ALSO-NOTIFY"));
  auto missing = keys_.get_domain_metadata("example.com", "TSIG-ALLOW-AXFR");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());

  // Replacing replaces every value; an empty list deletes the kind.
  ASSERT_TRUE(keys_.set_domain_metadata("example.com", "ALSO-NOTIFY", {"198.51.100.7"}).ok());
  ASSERT_TRUE(keys_.set_domain_metadata("example.com", "NSEC3PARAM", {}).ok());
  all = keys_.get_all_domain_metadata("example.com");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (DomainMetadata{{"ALSO-NOTIFY", {"198.51.100.7"}}, {"NSEC3NARROW", {"1"}}}));
  // Per zone.
  auto other = keys_.get_all_domain_metadata("_smimecert.example.org");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
  EXPECT_FALSE(keys_.set_domain_metadata("example.com", "", {"x"}).ok());
}

TEST_F(KeyStoreTest, EveryWriteBumpsTheZoneSerial) {
  // Pin the serial far in the future so that the bump is +1 and observable within a second.
  const std::int64_t far = 4000000000;
  raw_int(store_.path(),
          "UPDATE zones SET serial = " + std::to_string(far) + " WHERE name = 'example.com'");
  ASSERT_EQ(serial("example.com"), far);
  auto id = keys_.add_domain_key("example.com", key(257));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(serial("example.com"), far + 1);
  ASSERT_TRUE(keys_.set_key_active("example.com", *id, false).ok());
  EXPECT_EQ(serial("example.com"), far + 2);
  ASSERT_TRUE(keys_.set_domain_metadata("example.com", "NSEC3PARAM", {"1 0 0 -"}).ok());
  EXPECT_EQ(serial("example.com"), far + 3);
  // A failed write changes nothing.
  EXPECT_FALSE(keys_.remove_domain_key("example.com", *id + 7).ok());
  EXPECT_EQ(serial("example.com"), far + 3);
  // Reads do not bump.
  ASSERT_TRUE(keys_.get_domain_keys("example.com").ok());
  EXPECT_EQ(serial("example.com"), far + 3);
  // One bump per transaction, however many writes.
  ASSERT_TRUE(keys_.begin().ok());
  ASSERT_TRUE(keys_.add_domain_key("example.com", key(256)).ok());
  ASSERT_TRUE(keys_.set_domain_metadata("example.com", "NSEC3NARROW", {"1"}).ok());
  ASSERT_TRUE(keys_.commit().ok());
  EXPECT_EQ(serial("example.com"), far + 4);
}

TEST_F(KeyStoreTest, TransactionsCommitAndRollBack) {
  EXPECT_EQ(keys_.commit().code(), Status::Code::kConflict);
  EXPECT_EQ(keys_.rollback().code(), Status::Code::kConflict);

  ASSERT_TRUE(keys_.begin().ok());
  EXPECT_TRUE(keys_.in_transaction());
  EXPECT_EQ(keys_.begin().code(), Status::Code::kConflict);
  auto id = keys_.add_domain_key("example.com", key(257));
  ASSERT_TRUE(id.ok());
  // Reads inside the transaction see its writes (pdnsutil secure-zone reads the new key back).
  auto inside = keys_.get_domain_keys("example.com");
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(inside->size(), 1u);
  ASSERT_TRUE(keys_.rollback().ok());
  EXPECT_FALSE(keys_.in_transaction());
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys"), 0);

  ASSERT_TRUE(keys_.begin().ok());
  ASSERT_TRUE(keys_.add_domain_key("example.com", key(257)).ok());
  ASSERT_TRUE(keys_.set_domain_metadata("example.com", "NSEC3PARAM", {"1 0 0 -"}).ok());
  // A failing call inside keeps the earlier writes of the transaction.
  EXPECT_FALSE(keys_.remove_domain_key("example.com", 999).ok());
  ASSERT_TRUE(keys_.commit().ok());
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys"), 1);
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_metadata"), 1);
  auto other_ptr = KeyStore::create(store_.path());
  KeyStore& other = *other_ptr;
  auto seen = other.get_domain_keys("example.com");
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->size(), 1u);
}

TEST_F(KeyStoreTest, OpenTransactionIsRolledBackOnDestruction) {
  {
    auto scoped_ptr = KeyStore::create(store_.path());
    KeyStore& scoped = *scoped_ptr;
    ASSERT_TRUE(scoped.begin().ok());
    ASSERT_TRUE(scoped.add_domain_key("example.com", key(257)).ok());
  }
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys"), 0);
  EXPECT_TRUE(keys_.add_domain_key("example.com", key(257)).ok());  // the lock is gone
}

TEST_F(KeyStoreTest, WriterWaitsThenFailsWhileAnotherHoldsTheLock) {
  KeyStoreOptions quick;
  quick.busy_timeout_ms = 50;
  auto other_ptr = KeyStore::create(store_.path(), quick);
  KeyStore& other = *other_ptr;
  ASSERT_TRUE(keys_.begin().ok());
  auto blocked = other.add_domain_key("example.com", key(257));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), Status::Code::kStoreError);
  EXPECT_NE(blocked.status().message().find("locked"), std::string::npos)
      << blocked.status().message();
  // Readers are not blocked (WAL).
  EXPECT_TRUE(other.get_domain_keys("example.com").ok());
  ASSERT_TRUE(keys_.commit().ok());
  EXPECT_TRUE(other.add_domain_key("example.com", key(257)).ok());
}

TEST_F(KeyStoreTest, RemovingAZoneRemovesItsKeysAndMetadata) {
  ASSERT_TRUE(keys_.add_domain_key("example.com", key(257)).ok());
  ASSERT_TRUE(keys_.set_domain_metadata("example.com", "NSEC3PARAM", {"1 0 0 -"}).ok());
  ASSERT_TRUE(keys_.add_domain_key("_smimecert.example.org", key(257)).ok());
  ASSERT_TRUE(store_.store().begin().ok());
  auto removed = store_.store().remove_zone("example.com", false);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  ASSERT_TRUE(store_.store().commit().ok());
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_keys"), 1);
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM domain_metadata"), 0);
  EXPECT_EQ(keys_.get_domain_keys("example.com").status().code(), Status::Code::kNotFound);
}

TEST_F(KeyStoreTest, MissingStoreIsAStoreErrorAndNotCreated) {
  TempDir dir;
  auto missing_ptr = KeyStore::create(dir.file("nope.db"));
  KeyStore& missing = *missing_ptr;
  auto keys = missing.get_domain_keys("example.com");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), Status::Code::kStoreError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("nope.db")));
}

TEST_F(KeyStoreTest, OwnerNeighboursReadTheIndexInOrder) {
  const Zone zone = store_.zone("example.com");
  EXPECT_FALSE(*keys_.first_owner(zone.id));
  ASSERT_EQ(store_.add(zone, new_certificate("rsa.pem", "alice@example.com")), 1);
  ASSERT_EQ(store_.add(zone, new_certificate("ed25519.pem", "carol@example.com")), 1);
  // The owners from coreutils: printf alice | sha256sum; printf carol | sha256sum.
  OwnerHash alice{}, carol{};
  ASSERT_TRUE(decode_hex("2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db", alice.data(),
                         alice.size()));
  ASSERT_TRUE(decode_hex("4c26d9074c27d89ede59270c0ac14b71e071b15239519f75474b2f3b", carol.data(),
                         carol.size()));
  auto first = keys_.first_owner(zone.id);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(**first, alice);

  auto at = keys_.owner_neighbours(zone.id, alice);
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(at->at_or_before, alice);
  EXPECT_EQ(at->after, carol);
  OwnerHash between = alice;
  between[0] = 0x30;
  auto mid = keys_.owner_neighbours(zone.id, between);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->at_or_before, alice);
  EXPECT_EQ(mid->after, carol);
  OwnerHash low{};
  auto below = keys_.owner_neighbours(zone.id, low);
  ASSERT_TRUE(below.ok());
  EXPECT_FALSE(below->at_or_before);
  EXPECT_EQ(below->after, alice);
  OwnerHash high{};
  high.fill(0xff);
  auto above = keys_.owner_neighbours(zone.id, high);
  ASSERT_TRUE(above.ok());
  EXPECT_EQ(above->at_or_before, carol);
  EXPECT_FALSE(above->after);
  // Another zone's owners are not neighbours.
  auto other = keys_.owner_neighbours(store_.zone("_smimecert.example.org").id, high);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->at_or_before);
}

// tests/data/db/store-v1.db was made by smimea-ctl at schema version 1 (see its README).
TEST(KeyStoreMigration, VersionOneFixtureMigratesWithItsData) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  std::filesystem::copy_file(test::data_path("db/store-v1.db"), path);
  ASSERT_EQ(raw_int(path, "PRAGMA user_version"), 1);
  ASSERT_EQ(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'domain_keys'"), 0);
  {
    auto old = Store::open(path, StoreOptions{});
    ASSERT_FALSE(old.ok());
    EXPECT_NE(old.status().message().find("smimea-ctl init"), std::string::npos);
    auto keys_ptr = KeyStore::create(path);
    KeyStore& keys = *keys_ptr;
    auto refused = keys.get_domain_keys("example.com");
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("smimea-ctl init"), std::string::npos);
  }
  auto before = Store::init(path);
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_EQ(*before, 1);
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), kSchemaVersion);
  // Version 3: every zone is a master zone, and there are no TSIG keys yet.
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM zones WHERE kind = 'master'"), 3);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM tsig_keys"), 0);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM zones"), 3);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM certificates"), 2);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM records"), 2);
  EXPECT_EQ(raw_int(path, "SELECT serial FROM zones WHERE name = 'example.com'"), 1795882232);

  auto store = Store::open(path, StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto certs = (*store)->list_certificates("alice@example.com", "");
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 1u);
  EXPECT_EQ(certs->front().zone, "example.com");
  auto keys_ptr = KeyStore::create(path);
  KeyStore& keys = *keys_ptr;
  auto id = keys.add_domain_key("example.com", key(257));
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(keys.get_domain_keys("example.net").status().code(), Status::Code::kConflict);
  // Up to date now: a second init changes nothing.
  auto again = Store::init(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, kSchemaVersion);
}

TEST(KeyStoreMigration, VersionTwoFixtureMigratesWithItsData) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  std::filesystem::copy_file(test::data_path("db/store-v2.db"), path);
  ASSERT_EQ(raw_int(path, "PRAGMA user_version"), 2);
  ASSERT_EQ(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'tsig_keys'"), 0);
  {
    auto old = Store::open(path, StoreOptions{});
    ASSERT_FALSE(old.ok());
    EXPECT_NE(old.status().message().find("smimea-ctl init"), std::string::npos);
    auto keys_ptr = KeyStore::create(path);
    KeyStore& keys = *keys_ptr;
    auto refused = keys.get_tsig_keys();
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("smimea-ctl init"), std::string::npos);
  }
  auto before = Store::init(path);
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_EQ(*before, 2);
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), kSchemaVersion);
  // What version 2 held is still there.
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM zones"), 3);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM certificates"), 2);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM records"), 2);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM domain_keys"), 1);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM domain_metadata"), 2);
  EXPECT_EQ(raw_int(path, "SELECT serial FROM zones WHERE name = 'example.com'"), 1795884383);
  EXPECT_EQ(raw_int(path,
                    "SELECT notified_serial FROM zones WHERE name = "
                    "'_smimecert.example.org'"),
            1795884000);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM zones WHERE kind = 'master'"), 3);

  auto store = Store::open(path, StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto org = (*store)->find_zone("_smimecert.example.org");
  ASSERT_TRUE(org.ok());
  EXPECT_EQ(org->kind, ZoneKind::kMaster);
  EXPECT_EQ(org->notified_serial, 1795884000);
  auto keys_ptr = KeyStore::create(path);
  KeyStore& keys = *keys_ptr;
  auto stored = keys.get_domain_keys("example.com");
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ(stored->front().flags, 257u);
  EXPECT_EQ(stored->front().content.rfind("Private-key-format: v1.2\n", 0), 0u);
  auto meta = keys.get_domain_metadata("example.com", "NSEC3PARAM");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(*meta, std::vector<std::string>{"1 0 0 -"});
  ASSERT_TRUE(keys.set_tsig_key({"k", "hmac-sha256", "c2VjcmV0"}).ok());
  auto again = Store::init(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, kSchemaVersion);
}

// --- zone transfer ---

TEST_F(KeyStoreTest, SetNotifiedWritesTheSerialWithoutMovingIt) {
  const Zone before = store_.zone("example.com");
  EXPECT_EQ(before.notified_serial, -1);
  ASSERT_TRUE(keys_.set_notified(before.id, before.serial).ok());
  const Zone after = store_.zone("example.com");
  EXPECT_EQ(after.notified_serial, static_cast<std::int64_t>(before.serial));
  EXPECT_EQ(after.serial, before.serial);
  EXPECT_EQ(raw_int(store_.path(),
                    "SELECT notified_serial FROM zones WHERE name = "
                    "'example.com'"),
            static_cast<std::int64_t>(before.serial));
  // The full uint32 range round-trips.
  ASSERT_TRUE(keys_.set_notified(before.id, 4294967295u).ok());
  EXPECT_EQ(store_.zone("example.com").notified_serial, 4294967295);
  // Other zones are untouched.
  EXPECT_EQ(store_.zone("_smimecert.example.org").notified_serial, -1);
  EXPECT_EQ(keys_.set_notified(987654, 1).code(), Status::Code::kNotFound);
}

TEST_F(KeyStoreTest, SetNotifiedInsidePdnsTransactionCommitsWithIt) {
  const Zone zone = store_.zone("example.com");
  ASSERT_TRUE(keys_.begin().ok());
  ASSERT_TRUE(keys_.set_notified(zone.id, 42).ok());
  ASSERT_TRUE(keys_.rollback().ok());
  EXPECT_EQ(store_.zone("example.com").notified_serial, -1);
}

TEST_F(KeyStoreTest, TsigKeysRoundTrip) {
  auto none = keys_.get_tsig_keys();
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_TRUE(none->empty());
  EXPECT_TRUE(keys_.get_tsig_key("xfr").status().is_not_found());

  // pdns names keys and algorithms as DNS names: any case, trailing dot.
  ASSERT_TRUE(keys_.set_tsig_key({"XFR-Key.", "HMAC-SHA256.", "c2VjcmV0LW9uZQ=="}).ok());
  ASSERT_TRUE(keys_.set_tsig_key({"another", "hmac-sha512", "c2VjcmV0LXR3bw=="}).ok());
  auto one = keys_.get_tsig_key("xfr-key.");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->name, "xfr-key");
  EXPECT_EQ(one->algorithm, "hmac-sha256");
  EXPECT_EQ(one->secret, "c2VjcmV0LW9uZQ==");
  auto all = keys_.get_tsig_keys();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "another");
  EXPECT_EQ((*all)[1].name, "xfr-key");

  // Replaced by name.
  ASSERT_TRUE(keys_.set_tsig_key({"xfr-key", "hmac-sha384", "bmV3LXNlY3JldA=="}).ok());
  one = keys_.get_tsig_key("XFR-KEY");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->algorithm, "hmac-sha384");
  EXPECT_EQ(one->secret, "bmV3LXNlY3JldA==");
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM tsig_keys"), 2);

  ASSERT_TRUE(keys_.delete_tsig_key("Xfr-Key.").ok());
  EXPECT_TRUE(keys_.get_tsig_key("xfr-key").status().is_not_found());
  ASSERT_TRUE(keys_.delete_tsig_key("xfr-key").ok());  // gone already: fine
  EXPECT_EQ(raw_int(store_.path(), "SELECT count(*) FROM tsig_keys"), 1);
  // Keys are not zone data: no serial moved.
  EXPECT_EQ(store_.zone("example.com").serial, zones_[0].serial);
}

TEST_F(KeyStoreTest, TsigErrorsNeverShowTheSecret) {
  const std::string secret = "dG9wLXNlY3JldC1tYXRlcmlhbA==";
  const Status no_name = keys_.set_tsig_key({"", "hmac-sha256", secret});
  EXPECT_EQ(no_name.code(), Status::Code::kInvalidArgument);
  const Status no_algo = keys_.set_tsig_key({"k", "", secret});
  EXPECT_EQ(no_algo.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(keys_.set_tsig_key({"k", "hmac-sha256", ""}).code(), Status::Code::kInvalidArgument);
  for (const Status* s : {&no_name, &no_algo}) {
    EXPECT_EQ(s->message().find(secret), std::string::npos) << s->message();
  }
}

}  // namespace
}  // namespace smimea
