// The catalog zone (RFC 9432, version 2): the store's unique ids and catalog serial, and what
// the Answerer answers and lists for it. Raw SQL (sqlite3.h) reads the file independently of
// the code under test.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "../sqlite_files.h"
#include "../store_util.h"
#include "smimea/answer.h"
#include "smimea/key_store.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::raw_int;
using test::StoreFixture;

class Lines : public RecordSink {
 public:
  void add_text(std::string_view qname, QType qtype, std::uint32_t ttl, std::int64_t zone_id,
                std::string_view content, bool /*auth*/) override {
    lines.push_back(std::string(qname) + " " + std::string(qtype_name(qtype)) + " " +
                    std::to_string(ttl) + " " + std::string(content));
    zone_ids.push_back(zone_id);
  }
  void add_smimea(std::string_view qname, std::int64_t, const RecordView&) override {
    lines.push_back(std::string(qname) + " SMIMEA");
  }
  void add_ent(std::string_view qname, std::int64_t zone_id) override {
    lines.push_back(std::string(qname) + " ENT");
    zone_ids.push_back(zone_id);
  }
  std::vector<std::string> lines;
  std::vector<std::int64_t> zone_ids;
};

using Lines_ = std::vector<std::string>;

class CatalogTest : public ::testing::Test {
 protected:
  CatalogTest() {
    config_.database = fixture_.path();
    config_.catalog = "catalog.invalid";
    config_.nameservers = {"ns1.example.net."};
    config_.soa.mname = "ns1.example.net.";
    config_.soa.rname = "hostmaster.example.net.";
    config_.soa.ttl = 1800;
    config_.ns_ttl = 7200;
    fixture_.add_zones({{"b.example", ZoneMode::kAuthoritative},
                        {"a.example", ZoneMode::kAuthoritative},
                        {"over.example", ZoneMode::kOverlay}});
  }

  // Read on a connection of its own, as pdns and smimea-ctl would.
  Zone zone(const std::string& name) {
    auto reader = Store::open(fixture_.path(), StoreOptions{});
    EXPECT_TRUE(reader.ok());
    auto z = (*reader)->find_zone(name);
    EXPECT_TRUE(z.ok()) << name;
    return z.ok() ? *z : Zone{};
  }
  std::int64_t catalog_serial() { return raw_int(fixture_.path(), "SELECT serial FROM catalog"); }
  void change(const std::function<void(Store&)>& what) {
    auto writer = Store::open(fixture_.path(), StoreOptions{});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->begin().ok());
    what(**writer);
    ASSERT_TRUE((*writer)->commit().ok());
  }
  std::vector<std::string> lookup(std::string_view qname, QType qtype = QType::kAny,
                                  std::int64_t zone_id = -1) {
    Lines sink;
    const Status s = answerer_.lookup(qname, qtype, sink, zone_id);
    EXPECT_TRUE(s.ok()) << s.message();
    return sink.lines;
  }
  std::string ptr_name(const std::string& member) {
    return zone(member).catalog_id + ".zones.catalog.invalid.";
  }

  StoreFixture fixture_;
  Config config_;
  Answerer answerer_{fixture_.store(), config_};
};

TEST_F(CatalogTest, EveryZoneHasItsOwnRandomId) {
  const std::string a = zone("a.example").catalog_id;
  const std::string b = zone("b.example").catalog_id;
  EXPECT_EQ(a.size(), 16U);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_NE(a, b);
  // Removed and added again: a new member, with a new id.
  change([](Store& s) { ASSERT_TRUE(s.remove_zone("a.example", false).ok()); });
  change([](Store& s) { ASSERT_TRUE(s.add_zone("a.example", ZoneMode::kAuthoritative).ok()); });
  EXPECT_NE(zone("a.example").catalog_id, a);
  EXPECT_EQ(zone("b.example").catalog_id, b);
}

TEST_F(CatalogTest, SerialMovesWithMembershipOnly) {
  const std::int64_t first = catalog_serial();
  EXPECT_GT(first, 0);
  change([](Store& s) { ASSERT_TRUE(s.add_zone("c.example", ZoneMode::kAuthoritative).ok()); });
  const std::int64_t added = catalog_serial();
  EXPECT_NE(added, first);
  // Not members: an overlay zone; a kind or case change, a certificate.
  change([](Store& s) { ASSERT_TRUE(s.add_zone("o2.example", ZoneMode::kOverlay).ok()); });
  change([](Store& s) { ASSERT_TRUE(s.set_zone_kind("c.example", ZoneKind::kNative).ok()); });
  change([](Store& s) { ASSERT_TRUE(s.set_zone_case("c.example", true).ok()); });
  change([](Store& s) {
    auto z = s.find_zone("b.example");
    ASSERT_TRUE(z.ok());
    ASSERT_TRUE(s.add_certificate(*z, test::new_certificate("ec.pem", "bob@b.example")).ok());
  });
  change([](Store& s) { ASSERT_TRUE(s.remove_zone("o2.example", false).ok()); });
  EXPECT_EQ(catalog_serial(), added);
  // Removed: moves again, forward (RFC 1982), even within the same second.
  change([](Store& s) { ASSERT_TRUE(s.remove_zone("c.example", false).ok()); });
  const std::int64_t removed = catalog_serial();
  const auto step = static_cast<std::uint32_t>(removed - added);
  EXPECT_GE(step, 1U) << added << " -> " << removed;
  EXPECT_LT(step, 0x80000000U) << added << " -> " << removed;
  // A rolled back change leaves it.
  auto writer = Store::open(fixture_.path(), StoreOptions{});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->begin().ok());
  ASSERT_TRUE((*writer)->add_zone("d.example", ZoneMode::kAuthoritative).ok());
  (*writer)->rollback();
  EXPECT_EQ(catalog_serial(), removed);
}

TEST_F(CatalogTest, TheSerialWrapsAtTwoToThe32) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(fixture_.path().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE catalog SET serial = 4294967295", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  change([](Store& s) { ASSERT_TRUE(s.add_zone("c.example", ZoneMode::kAuthoritative).ok()); });
  EXPECT_EQ(catalog_serial(), 0);
}

TEST_F(CatalogTest, NotifiedSerialOfTheCatalog) {
  auto keys = KeyStore::create(fixture_.path(), KeyStoreOptions{});
  ASSERT_TRUE(keys->set_notified(kCatalogZoneId, 1234).ok());
  EXPECT_EQ(raw_int(fixture_.path(), "SELECT notified_serial FROM catalog"), 1234);
  EXPECT_EQ(raw_int(fixture_.path(), "SELECT count(*) FROM zones WHERE notified_serial = 1234"), 0);
}

TEST_F(CatalogTest, AnswersFromTheZoneTable) {
  const std::string soa = "ns1.example.net. hostmaster.example.net. " +
                          std::to_string(catalog_serial()) + " 10800 3600 1209600 300";
  EXPECT_EQ(lookup("Catalog.Invalid."),
            (Lines_{"Catalog.Invalid. SOA 1800 " + soa, "Catalog.Invalid. NS 7200 invalid."}));
  EXPECT_EQ(lookup("catalog.invalid", QType::kNs), Lines_{"catalog.invalid NS 7200 invalid."});
  EXPECT_EQ(lookup("version.catalog.invalid."), Lines_{"version.catalog.invalid. TXT 7200 \"2\""});
  EXPECT_EQ(lookup("version.catalog.invalid.", QType::kTxt),
            Lines_{"version.catalog.invalid. TXT 7200 \"2\""});
  EXPECT_TRUE(lookup("version.catalog.invalid.", QType::kPtr).empty());
  EXPECT_EQ(lookup("zones.catalog.invalid."), Lines_{"zones.catalog.invalid. ENT"});
  const std::string a = ptr_name("a.example");
  EXPECT_EQ(lookup(a), Lines_{a + " PTR 7200 a.example."});
  EXPECT_EQ(lookup(a, QType::kPtr, kCatalogZoneId), Lines_{a + " PTR 7200 a.example."});
  EXPECT_TRUE(lookup(a, QType::kTxt).empty());
  // In another zone's context, nothing; unknown names, nothing.
  EXPECT_TRUE(lookup(a, QType::kPtr, zone("a.example").id).empty());
  EXPECT_TRUE(lookup("0123456789abcdef.zones.catalog.invalid.").empty());
  EXPECT_TRUE(lookup("x.version.catalog.invalid.").empty());
  // The overlay zone is not a member.
  EXPECT_TRUE(lookup(ptr_name("over.example")).empty());
  // The members' zones answer as before.
  EXPECT_EQ(lookup("a.example.", QType::kNs), Lines_{"a.example. NS 7200 ns1.example.net."});
}

TEST_F(CatalogTest, FollowsTheStore) {
  const std::string a = ptr_name("a.example");
  EXPECT_FALSE(lookup(a).empty());
  change([](Store& s) { ASSERT_TRUE(s.remove_zone("a.example", false).ok()); });
  ASSERT_TRUE(answerer_.refresh().ok());
  EXPECT_TRUE(lookup(a).empty());
  const ZoneEntry* catalog = answerer_.find_zone("catalog.invalid.");
  ASSERT_NE(catalog, nullptr);
  EXPECT_EQ(catalog->zone.serial, static_cast<std::uint32_t>(catalog_serial()));
  EXPECT_EQ(catalog->zone.id, kCatalogZoneId);
  EXPECT_EQ(answerer_.find_zone_by_id(kCatalogZoneId), catalog);
}

TEST_F(CatalogTest, ListingInTransferOrder) {
  Lines sink;
  ASSERT_TRUE(answerer_.list(kCatalogZoneId, sink).ok());
  const std::string soa = "ns1.example.net. hostmaster.example.net. " +
                          std::to_string(catalog_serial()) + " 10800 3600 1209600 300";
  EXPECT_EQ(sink.lines,
            (Lines_{"catalog.invalid. SOA 1800 " + soa, "catalog.invalid. NS 7200 invalid.",
                    "version.catalog.invalid. TXT 7200 \"2\"",
                    ptr_name("a.example") + " PTR 7200 a.example.",
                    ptr_name("b.example") + " PTR 7200 b.example."}));
  EXPECT_EQ(std::set<std::int64_t>(sink.zone_ids.begin(), sink.zone_ids.end()),
            std::set<std::int64_t>{kCatalogZoneId});
  auto transfer = answerer_.open_transfer("CATALOG.invalid.");
  ASSERT_TRUE(transfer.ok());
}

TEST_F(CatalogTest, OffByDefault) {
  Config plain = config_;
  plain.catalog.clear();
  Answerer answerer(fixture_.store(), plain);
  ASSERT_TRUE(answerer.refresh().ok());
  EXPECT_EQ(answerer.find_zone("catalog.invalid"), nullptr);
  EXPECT_EQ(answerer.find_zone_by_id(kCatalogZoneId), nullptr);
  EXPECT_EQ(answerer.zones().size(), 3U);
}

TEST_F(CatalogTest, AStoreZoneOfTheCatalogsNameIsNotServed) {
  change(
      [](Store& s) { ASSERT_TRUE(s.add_zone("catalog.invalid", ZoneMode::kAuthoritative).ok()); });
  ASSERT_TRUE(answerer_.refresh().ok());
  const ZoneEntry* catalog = answerer_.find_zone("catalog.invalid");
  ASSERT_NE(catalog, nullptr);
  EXPECT_TRUE(catalog->catalog);
  EXPECT_EQ(lookup("catalog.invalid", QType::kNs), Lines_{"catalog.invalid NS 7200 invalid."});
  EXPECT_TRUE(lookup(ptr_name("catalog.invalid")).empty());
}

}  // namespace
}  // namespace smimea
