// Zone transfer in the store and the Answerer: zone kinds, the zone cursor a transfer pulls its
// records from, and the read snapshot that keeps a transfer consistent while smimea-ctl
// writes. Writers are separate Store connections, as smimea-ctl is a separate process.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../store_util.h"
#include "../test_util.h"
#include "smimea/answer.h"
#include "smimea/hex.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::StoreFixture;

std::string raw_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string out = "(none)";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* p = sqlite3_column_text(stmt, 0);
      out = p ? reinterpret_cast<const char*>(p) : "(null)";
    }
  } else {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

// A second read-write connection to the same file: what smimea-ctl does meanwhile.
class Writer {
 public:
  explicit Writer(const std::string& path) {
    auto store = Store::open(path, StoreOptions{});
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (store.ok()) store_ = std::move(store).value();
  }
  // Adds `n` certificates user<first..first+n)@<zone> in one transaction; returns records added.
  int add(const std::string& zone_name, int first, int n) {
    EXPECT_TRUE(store_->begin().ok());
    auto zone = store_->find_zone(zone_name);
    EXPECT_TRUE(zone.ok());
    int added = 0;
    for (int i = first; i < first + n; ++i) {
      auto r = store_->add_certificate(
          *zone, new_certificate("ec.pem", "user" + std::to_string(i) + "@" + zone_name,
                                 {RecordParams{}}, 300, false));
      EXPECT_TRUE(r.ok()) << r.status().message();
      if (r.ok()) added += r->records_added;
    }
    const Status s = store_->commit();
    EXPECT_TRUE(s.ok()) << s.message();
    return added;
  }
  Store& store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

class CountVisitor : public RecordVisitor {
 public:
  void visit(const RecordView& rr) override {
    owners.push_back(to_hex(rr.owner->data(), rr.owner->size()));
  }
  std::vector<std::string> owners;
};

// Records as "name TYPE content" (SMIMEA content as "u s m hex").
class Lines : public RecordSink {
 public:
  void add_text(std::string_view qname, QType qtype, std::uint32_t, std::int64_t,
                std::string_view content, bool) override {
    lines.push_back(std::string(qname) + " " + std::string(qtype_name(qtype)) + " " +
                    std::string(content));
  }
  void add_smimea(std::string_view qname, std::int64_t, const RecordView& rr) override {
    lines.push_back(
        std::string(qname) + " SMIMEA " + std::to_string(static_cast<int>(rr.params.usage)) + " " +
        std::to_string(static_cast<int>(rr.params.selector)) + " " +
        std::to_string(static_cast<int>(rr.params.matching_type)) + " " + to_hex(rr.data, rr.size));
  }
  void add_ent(std::string_view qname, std::int64_t) override {
    lines.push_back(std::string(qname) + " ENT");
  }
  std::vector<std::string> lines;
};

// --- zone kinds ---

TEST(StoreZoneKind, DefaultsToMasterAndCanBeChanged) {
  StoreFixture f;
  ASSERT_TRUE(f.store().begin().ok());
  auto master = f.store().add_zone("example.com", ZoneMode::kAuthoritative);
  auto native = f.store().add_zone("example.org", ZoneMode::kAuthoritative, ZoneKind::kNative);
  ASSERT_TRUE(master.ok() && native.ok());
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(master->kind, ZoneKind::kMaster);
  EXPECT_EQ(native->kind, ZoneKind::kNative);
  EXPECT_EQ(raw_text(f.path(), "SELECT kind FROM zones WHERE name = 'example.com'"), "master");
  EXPECT_EQ(raw_text(f.path(), "SELECT kind FROM zones WHERE name = 'example.org'"), "native");

  const std::uint32_t serial = f.zone("example.com").serial;
  ASSERT_TRUE(f.store().begin().ok());
  auto changed = f.store().set_zone_kind("example.com", ZoneKind::kNative);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  ASSERT_TRUE(f.store().commit().ok());
  EXPECT_EQ(changed->kind, ZoneKind::kNative);
  EXPECT_EQ(raw_text(f.path(), "SELECT kind FROM zones WHERE name = 'example.com'"), "native");
  EXPECT_EQ(f.zone("example.com").serial, serial);  // what pdns is told, not zone data

  std::vector<Zone> zones;
  ASSERT_TRUE(f.store().load_zones(&zones).ok());
  ASSERT_EQ(zones.size(), 2u);
  EXPECT_EQ(zones[0].kind, ZoneKind::kNative);
  EXPECT_EQ(zones[1].kind, ZoneKind::kNative);

  ASSERT_TRUE(f.store().begin().ok());
  EXPECT_TRUE(
      f.store().set_zone_kind("nowhere.example", ZoneKind::kMaster).status().is_not_found());
  f.store().rollback();
}

TEST(StoreZoneKind, NamesRoundTrip) {
  EXPECT_EQ(zone_kind_name(ZoneKind::kMaster), "master");
  EXPECT_EQ(zone_kind_name(ZoneKind::kNative), "native");
  EXPECT_EQ(parse_zone_kind("master"), ZoneKind::kMaster);
  EXPECT_EQ(parse_zone_kind("native"), ZoneKind::kNative);
  EXPECT_FALSE(parse_zone_kind("slave").has_value());
  EXPECT_FALSE(parse_zone_kind("Master").has_value());
}

TEST(StoreZoneKind, TheSchemaRefusesOtherKinds) {
  StoreFixture f;
  f.add_zones({{"example.com", ZoneMode::kAuthoritative}});
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(f.path().c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE zones SET kind = 'slave'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
}

// --- the zone cursor ---

TEST(StoreZoneCursor, PullsWhatListZoneVisits) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  Writer w(f.path());
  ASSERT_EQ(w.add("example.com", 0, 40), 40);
  CountVisitor visited;
  ASSERT_TRUE(f.store().list_zone(zone.id, visited).ok());
  ASSERT_EQ(visited.owners.size(), 40u);

  auto cursor = f.store().open_zone_cursor(zone.id);
  ASSERT_TRUE(cursor.ok()) << cursor.status().message();
  std::vector<std::string> pulled;
  RecordView rr;
  for (;;) {
    auto more = (*cursor)->next(&rr);
    ASSERT_TRUE(more.ok()) << more.status().message();
    if (!*more) break;
    pulled.push_back(to_hex(rr.owner->data(), rr.owner->size()));
  }
  EXPECT_EQ(pulled, visited.owners);
  EXPECT_TRUE(std::is_sorted(pulled.begin(), pulled.end()));
  // At the end it stays at the end.
  auto after = (*cursor)->next(&rr);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(*after);
}

TEST(StoreZoneCursor, OneAtATimePerConnection) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  auto first = f.store().open_zone_cursor(zone.id);
  ASSERT_TRUE(first.ok());
  auto second = f.store().open_zone_cursor(zone.id);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kConflict);
  CountVisitor v;
  EXPECT_EQ(f.store().list_zone(zone.id, v).code(), Status::Code::kConflict);
  first->reset();
  EXPECT_TRUE(f.store().open_zone_cursor(zone.id).ok());
}

TEST(StoreZoneCursor, SeesOneSnapshotWhileAnotherConnectionWrites) {
  StoreFixture f;
  const Zone zone = f.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  Writer w(f.path());
  ASSERT_EQ(w.add("example.com", 0, 30), 30);
  StoreOptions reader_options;
  reader_options.read_only = true;
  auto reader = Store::open(f.path(), reader_options);
  ASSERT_TRUE(reader.ok());
  auto cursor = (*reader)->open_zone_cursor(zone.id);
  ASSERT_TRUE(cursor.ok());
  RecordView rr;
  std::size_t n = 0;
  ASSERT_TRUE(*(*cursor)->next(&rr));
  ++n;
  // smimea-ctl is not blocked by a transfer in progress (WAL), and the transfer does not see
  // its commit: 30 records, not 30 + 20.
  ASSERT_EQ(w.add("example.com", 100, 20), 20);
  for (;;) {
    auto more = (*cursor)->next(&rr);
    ASSERT_TRUE(more.ok()) << more.status().message();
    if (!*more) break;
    ++n;
  }
  EXPECT_EQ(n, 30u);
  cursor->reset();
  CountVisitor now;
  ASSERT_TRUE((*reader)->list_zone(zone.id, now).ok());
  EXPECT_EQ(now.owners.size(), 50u);
}

TEST(StoreReadTransaction, OneSnapshotUntilEndRead) {
  StoreFixture f;
  f.add_zones({{"example.com", ZoneMode::kAuthoritative}});
  StoreOptions reader_options;
  reader_options.read_only = true;
  auto reader = Store::open(f.path(), reader_options);
  ASSERT_TRUE(reader.ok());
  Store& r = **reader;
  ASSERT_TRUE(r.begin_read().ok());
  EXPECT_EQ(r.begin_read().code(), Status::Code::kConflict);
  auto before = r.find_zone("example.com");
  ASSERT_TRUE(before.ok());
  Writer w(f.path());
  ASSERT_EQ(w.add("example.com", 0, 3), 3);  // moves the serial
  std::vector<Zone> zones;
  ASSERT_TRUE(r.load_zones(&zones).ok());
  ASSERT_EQ(zones.size(), 1u);
  EXPECT_EQ(zones[0].serial, before->serial);
  EXPECT_FALSE(zones[0].has_records);
  r.end_read();
  r.end_read();  // twice is harmless
  ASSERT_TRUE(r.load_zones(&zones).ok());
  EXPECT_NE(zones[0].serial, before->serial);
  EXPECT_TRUE(zones[0].has_records);
}

// --- the Answerer's listing ---

class ListingTest : public ::testing::Test {
 protected:
  ListingTest() {
    config_.database = fixture_.path();
    config_.nameservers = {"ns1.example.net.", "ns2.example.net."};
    config_.soa.mname = "ns1.example.net.";
    config_.soa.rname = "hostmaster.example.net.";
    zones_ = fixture_.add_zones(
        {{"example.com", ZoneMode::kAuthoritative}, {"example.net", ZoneMode::kOverlay}});
    StoreOptions options;
    options.read_only = true;
    auto reader = Store::open(fixture_.path(), options);
    EXPECT_TRUE(reader.ok());
    reader_ = std::move(reader).value();
    answerer_ = std::make_unique<Answerer>(*reader_, config_);
  }

  std::vector<std::string> pull_all(ZoneListing& listing) {
    Lines sink;
    for (;;) {
      auto more = listing.next(sink);
      EXPECT_TRUE(more.ok()) << more.status().message();
      if (!more.ok() || !*more) break;
    }
    return sink.lines;
  }

  StoreFixture fixture_;
  Config config_;
  std::vector<Zone> zones_;
  std::unique_ptr<Store> reader_;
  std::unique_ptr<Answerer> answerer_;
};

TEST_F(ListingTest, SoaNsThenRecordsOneByOne) {
  Writer w(fixture_.path());
  ASSERT_EQ(w.add("example.com", 0, 5), 5);
  auto listing = answerer_->open_listing(zones_[0].id);
  ASSERT_TRUE(listing.ok()) << listing.status().message();
  Lines sink;
  ASSERT_TRUE(*(*listing)->next(sink));
  ASSERT_EQ(sink.lines.size(), 1u);  // one record per call
  const std::string serial = std::to_string(fixture_.zone("example.com").serial);
  EXPECT_EQ(sink.lines[0], "example.com. SOA ns1.example.net. hostmaster.example.net. " + serial +
                               " 10800 3600 1209600 300");
  const std::vector<std::string> rest = pull_all(**listing);
  ASSERT_EQ(rest.size(), 2u + 5u);
  EXPECT_EQ(rest[0], "example.com. NS ns1.example.net.");
  EXPECT_EQ(rest[1], "example.com. NS ns2.example.net.");
  for (std::size_t i = 2; i < rest.size(); ++i) {
    EXPECT_NE(rest[i].find("._smimecert.example.com. SMIMEA 3 0 0 "), std::string::npos) << rest[i];
  }
  // The same as list().
  listing->reset();
  Lines listed;
  ASSERT_TRUE(answerer_->list(zones_[0].id, listed).ok());
  EXPECT_EQ(listed.lines.size(), 1u + rest.size());
}

TEST_F(ListingTest, SerialAndRecordsComeFromTheSameSnapshot) {
  Writer w(fixture_.path());
  ASSERT_EQ(w.add("example.com", 0, 10), 10);
  const std::uint32_t old_serial = fixture_.zone("example.com").serial;
  auto listing = answerer_->open_listing(zones_[0].id);
  ASSERT_TRUE(listing.ok());
  // A commit between opening the listing and pulling from it: a new serial and 10 records
  // the transfer must not contain, or a secondary would keep them under the old serial.
  ASSERT_EQ(w.add("example.com", 50, 10), 10);
  ASSERT_NE(fixture_.zone("example.com").serial, old_serial);
  const std::vector<std::string> lines = pull_all(**listing);
  ASSERT_EQ(lines.size(), 1u + 2u + 10u);
  EXPECT_NE(lines[0].find(" " + std::to_string(old_serial) + " "), std::string::npos) << lines[0];
  listing->reset();
  Lines now;
  ASSERT_TRUE(answerer_->list(zones_[0].id, now).ok());
  EXPECT_EQ(now.lines.size(), 1u + 2u + 20u);
}

TEST_F(ListingTest, OverlayZoneHasOnlyItsRecords) {
  Writer w(fixture_.path());
  ASSERT_EQ(w.add("example.net", 0, 2), 2);
  auto listing = answerer_->open_listing(zones_[1].id);
  ASSERT_TRUE(listing.ok());
  const std::vector<std::string> lines = pull_all(**listing);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("._smimecert.example.net. SMIMEA"), std::string::npos);
}

TEST_F(ListingTest, TransferIsByNameOfAnAuthoritativeZone) {
  // pdns's domain id may be another backend's or reused after a zone remove + zone add: the
  // name alone chooses, in the listing's snapshot.
  auto listing = answerer_->open_transfer("EXAMPLE.com.");
  ASSERT_TRUE(listing.ok()) << listing.status().message();
  EXPECT_EQ((*listing)->zone().zone.name, "example.com");
  listing->reset();
  auto unknown = answerer_->open_transfer("example.org");
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(unknown.status().is_not_found());
  // Overlay zones belong to the backend that owns them.
  ASSERT_EQ(zones_[1].mode, ZoneMode::kOverlay);
  auto overlay = answerer_->open_transfer(zones_[1].name);
  ASSERT_FALSE(overlay.ok());
  EXPECT_TRUE(overlay.status().is_not_found());
}

TEST_F(ListingTest, RegressZoneTableReloadedWhileOpeningATransfer) {
  // A commit between the adapter's last look at the zone table and the listing's snapshot
  // reloads the table inside open_transfer; the name passed in may be a view into the old
  // table (it crashed the backend under a concurrent smimea-ctl).
  ASSERT_TRUE(answerer_->refresh().ok());
  const ZoneEntry* zone = answerer_->find_zone("example.com");
  ASSERT_NE(zone, nullptr);
  Writer w(fixture_.path());
  ASSERT_EQ(w.add("example.com", 0, 3), 3);
  auto listing = answerer_->open_transfer(zone->zone.name);
  ASSERT_TRUE(listing.ok()) << listing.status().message();
  EXPECT_EQ(pull_all(**listing).size(), 1u + 2u + 3u);
}

TEST_F(ListingTest, UnknownZoneLeavesNoTransactionOpen) {
  auto listing = answerer_->open_listing(424242);
  ASSERT_FALSE(listing.ok());
  EXPECT_TRUE(listing.status().is_not_found());
  // No read left open: a later listing works and sees new data.
  Writer w(fixture_.path());
  ASSERT_EQ(w.add("example.com", 0, 1), 1);
  Lines sink;
  ASSERT_TRUE(answerer_->list(zones_[0].id, sink).ok());
  EXPECT_EQ(sink.lines.size(), 4u);
}

TEST_F(ListingTest, OnlyOneListingAtATime) {
  auto first = answerer_->open_listing(zones_[0].id);
  ASSERT_TRUE(first.ok());
  auto second = answerer_->open_listing(zones_[0].id);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kConflict);
  first->reset();
  EXPECT_TRUE(answerer_->open_listing(zones_[0].id).ok());
}

}  // namespace
}  // namespace smimea
