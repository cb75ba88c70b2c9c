// expired-certificates: withdraw in the store: the records of a certificate past its notAfter
// are left out of lookups, zone listings, has_records and the NSEC neighbours, and the serial
// of its zone moves once after it expires (KeyStore::move_serials_of_expired); with keep,
// nothing changes. Also the version-6 migration, which copies each certificate's notAfter to
// its records. Raw SQL (sqlite3.h) reads the files independently of the code under test.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <string>

#include "../sqlite_files.h"
#include "../store_util.h"
#include "../test_util.h"
#include "smimea/key_store.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::raw_int;
using test::StoreFixture;
using test::TempDir;

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// alice@example.com with a certificate valid until 2126 (rsa.pem), bob@example.com with one
// whose notAfter is `bob_not_after` (the same key and DER: only the store's copy of the date
// differs, which is all the store looks at).
class Expiry : public ::testing::Test {
 protected:
  void SetUp() override {
    zone_ = f_.add_zones(
                  {{"example.com", ZoneMode::kAuthoritative}, {"example.net", ZoneMode::kOverlay}})
                .front();
    alice_ = new_certificate("rsa.pem", "alice@example.com");
    ASSERT_EQ(f_.add(zone_, alice_), 1);
  }

  void add_bob(std::int64_t not_after) {
    bob_ = new_certificate("ed25519.pem", "bob@example.com");
    bob_.not_after = not_after;
    ASSERT_EQ(f_.add(zone_, bob_), 1);
  }

  std::unique_ptr<Store> server(bool withdraw) {
    StoreOptions options;
    options.read_only = true;
    options.withdraw_expired = withdraw;
    auto store = Store::open(f_.path(), options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::size_t served(Store& store, const NewCertificate& cert) {
    OwnerRecords rows;
    const Status s = store.find_records(zone_.id, cert.records.front().owner, &rows);
    EXPECT_TRUE(s.ok()) << s.message();
    return rows.records.size();
  }

  std::size_t listed(Store& store) {
    struct Count : RecordVisitor {
      std::size_t n = 0;
      void visit(const RecordView&) override { ++n; }
    } count;
    const Status s = store.list_zone(zone_.id, count);
    EXPECT_TRUE(s.ok()) << s.message();
    return count.n;
  }

  std::int64_t serial() {
    return raw_int(f_.path(), "SELECT serial FROM zones WHERE name = 'example.com'");
  }

  std::unique_ptr<KeyStore> keys(bool withdraw = true) {
    KeyStoreOptions options;
    options.withdraw_expired = withdraw;
    return KeyStore::create(f_.path(), options);
  }

  StoreFixture f_;
  Zone zone_;
  NewCertificate alice_, bob_;
};

TEST_F(Expiry, WithdrawLeavesAnExpiredCertificateOut) {
  add_bob(now() - 1);
  auto withdraw = server(true);
  ASSERT_TRUE(withdraw);
  EXPECT_EQ(served(*withdraw, alice_), 1u);
  EXPECT_EQ(served(*withdraw, bob_), 0u);
  EXPECT_EQ(listed(*withdraw), 1u);
  auto keep = server(false);
  ASSERT_TRUE(keep);
  EXPECT_EQ(served(*keep, bob_), 1u);
  EXPECT_EQ(listed(*keep), 2u);
}

TEST_F(Expiry, ACertificateIsServedThroughItsNotAfterSecond) {
  add_bob(now() + 60);
  auto withdraw = server(true);
  ASSERT_TRUE(withdraw);
  EXPECT_EQ(served(*withdraw, bob_), 1u);
  EXPECT_EQ(listed(*withdraw), 2u);
}

TEST_F(Expiry, HasRecordsCountsOnlyServedRecords) {
  ASSERT_EQ(raw_int(f_.path(), "SELECT count(*) FROM records"), 1);
  // Make alice's one certificate expired, as time would.
  test::exec_sql(f_.path(),
                 "UPDATE records SET not_after = 1; UPDATE certificates SET "
                 "not_after = 1");
  auto withdraw = server(true);
  ASSERT_TRUE(withdraw);
  auto zone = withdraw->find_zone("example.com");
  ASSERT_TRUE(zone.ok());
  EXPECT_FALSE(zone->has_records);
  auto keep = server(false);
  auto kept = keep->find_zone("example.com");
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(kept->has_records);
}

TEST_F(Expiry, NsecNeighboursLeaveOutExpiredOwners) {
  add_bob(now() - 1);
  const OwnerHash& alice = alice_.records.front().owner;
  const OwnerHash& bob = bob_.records.front().owner;
  // The owner of the two that sorts first: with withdraw, only alice's is there.
  auto first = keys(true)->first_owner(zone_.id);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ(**first, alice);
  auto all = keys(false)->first_owner(zone_.id);
  ASSERT_TRUE(all.ok() && all->has_value());
  EXPECT_EQ(**all, std::min(alice, bob));
  auto around = keys(true)->owner_neighbours(zone_.id, bob);
  ASSERT_TRUE(around.ok()) << around.status().message();
  for (const auto& h : {around->at_or_before, around->after}) {
    if (h) {
      EXPECT_NE(*h, bob);
    }
  }
}

TEST_F(Expiry, SerialMovesOnceAfterACertificateExpires) {
  const std::int64_t t = now();
  add_bob(t + 100);
  const std::int64_t before = serial();
  auto k = keys();
  auto next = k->move_serials_of_expired(t + 100);  // bob is still served in this second
  ASSERT_TRUE(next.ok()) << next.status().message();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(**next, t + 100);
  EXPECT_EQ(serial(), before);

  next = k->move_serials_of_expired(t + 101);  // now he is not
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_EQ(**next, alice_.not_after);
  const std::int64_t moved = serial();
  EXPECT_NE(moved, before);
  EXPECT_EQ(raw_int(f_.path(), "SELECT serial_changed_at FROM zones WHERE name = 'example.com'"),
            t + 101);

  // Once: another process, or the next round, finds nothing more to do.
  ASSERT_TRUE(keys()->move_serials_of_expired(t + 102).ok());
  EXPECT_EQ(serial(), moved);
}

TEST_F(Expiry, ACertificateThatExpiredBeforeTheLastChangeMovesNothing) {
  add_bob(now() - 1000);  // the serial moved when bob was added, after his notAfter
  const std::int64_t before = serial();
  ASSERT_TRUE(keys()->move_serials_of_expired(now()).ok());
  EXPECT_EQ(serial(), before);
}

TEST_F(Expiry, OverlayZonesHaveNoSerialToMove) {
  const Zone overlay = f_.zone("example.net");
  NewCertificate carol = new_certificate("ed25519.pem", "carol@example.net");
  carol.not_after = now() + 10;
  ASSERT_EQ(f_.add(overlay, carol), 1);
  const std::int64_t before =
      raw_int(f_.path(), "SELECT serial FROM zones WHERE name = 'example.net'");
  ASSERT_TRUE(keys()->move_serials_of_expired(now() + 20).ok());
  EXPECT_EQ(raw_int(f_.path(), "SELECT serial FROM zones WHERE name = 'example.net'"), before);
}

// tests/data/db/store-v5.db (see its README): alice@example.com and carol@example.org.
TEST(ExpiryMigration, Version5RecordsLearnTheirCertificatesNotAfter) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  std::filesystem::copy_file(test::data_path("db/store-v5.db"), path);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto before = Store::init(path);
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_EQ(*before, 5);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM records"), 2);
  EXPECT_EQ(raw_int(path,
                    "SELECT count(*) FROM records r JOIN certificates c ON c.id = "
                    "r.certificate_id WHERE r.not_after = c.not_after"),
            2);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM zones WHERE serial_changed_at = updated_at"), 2);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM tokens"), 1);
  EXPECT_EQ(raw_int(path,
                    "SELECT count(*) FROM sqlite_master WHERE name = "
                    "'idx_certificates_not_after'"),
            1);
  // The catalog: every zone gets a unique id of its own (16 hex digits), and the catalog its
  // row with a serial.
  EXPECT_EQ(raw_int(path,
                    "SELECT count(DISTINCT catalog_id) FROM zones WHERE length(catalog_id) = 16 "
                    "AND catalog_id NOT GLOB '*[^0-9a-f]*'"),
            2);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM catalog WHERE serial > 0"), 1);
}

}  // namespace
}  // namespace smimea
