// The zone table shared by the Answerers of a process (zone_table.h): one table per version
// of the store's zones, the version moved by the store's triggers. Raw SQL (sqlite3.h) writes
// and reads the file independently of the code under test.
#include "smimea/zone_table.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../sqlite_files.h"
#include "../store_util.h"
#include "../test_util.h"
#include "smimea/answer.h"

namespace smimea {
namespace {

using test::exec_sql;
using test::raw_int;
using test::StoreFixture;

class ZoneTableTest : public ::testing::Test {
 protected:
  ZoneTableTest() {
    config_.database = fixture_.path();
    config_.nameservers = {"ns1.example.net."};
    config_.soa.mname = "ns1.example.net.";
    config_.soa.rname = "hostmaster.example.net.";
    fixture_.add_zones(
        {{"example.com", ZoneMode::kAuthoritative}, {"example.net", ZoneMode::kOverlay}});
  }

  // A server connection of its own, as each pdns backend instance has.
  std::unique_ptr<Store> connection() {
    auto store = Store::open(fixture_.path(), StoreOptions{});
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  const std::vector<ZoneEntry>* table_of(Answerer& answerer) {
    const Status s = answerer.refresh();
    EXPECT_TRUE(s.ok()) << s.message();
    return &answerer.zones();
  }
  std::int64_t version() {
    return raw_int(fixture_.path(), "SELECT version FROM zone_table_version");
  }

  StoreFixture fixture_;
  Config config_;
};

TEST_F(ZoneTableTest, AnswerersOfOneStoreShareOneTable) {
  auto a = connection();
  auto b = connection();
  Answerer first(*a, config_);
  Answerer second(*b, config_);
  const auto* table = table_of(first);
  ASSERT_EQ(table->size(), 2u);
  EXPECT_EQ(table_of(second), table);
  // One made later, as pdns makes one per zone transfer, gets it too.
  auto c = connection();
  Answerer third(*c, config_);
  EXPECT_EQ(table_of(third), table);
}

TEST_F(ZoneTableTest, AChangedZoneGivesANewTableThatIsSharedAgain) {
  auto a = connection();
  auto b = connection();
  Answerer first(*a, config_);
  Answerer second(*b, config_);
  const auto* old_table = table_of(first);
  ASSERT_EQ(table_of(second), old_table);
  const std::uint32_t old_serial = first.find_zone("example.com")->zone.serial;
  fixture_.add(fixture_.zone("example.com"),
               test::new_certificate("rsa.pem", "alice@example.com", {RecordParams{}}, 600));
  const auto* new_table = table_of(first);
  EXPECT_NE(first.find_zone("example.com")->zone.serial, old_serial);
  EXPECT_TRUE(first.find_zone("example.com")->zone.has_records);
  EXPECT_EQ(table_of(second), new_table);
  EXPECT_EQ(second.find_zone("example.com")->zone.serial,
            static_cast<std::uint32_t>(
                raw_int(fixture_.path(), "SELECT serial FROM zones WHERE name = 'example.com'")));
}

TEST_F(ZoneTableTest, ACommitThatLeavesTheZonesAloneKeepsTheTable) {
  auto a = connection();
  Answerer answerer(*a, config_);
  const auto* table = table_of(answerer);
  const std::int64_t before = version();
  exec_sql(fixture_.path(),
           "INSERT INTO domain_metadata (zone_id, kind, content) "
           "SELECT id, 'NSEC3NARROW', '1' FROM zones WHERE name = 'example.com'");
  EXPECT_EQ(version(), before);
  EXPECT_EQ(table_of(answerer), table);
}

// Every change to a row of zones or catalog moves the version, whoever writes it: raw SQL here.
TEST_F(ZoneTableTest, TheTriggersMoveTheVersion) {
  const char* const changes[] = {
      "INSERT INTO zones (name, serial, created_at, updated_at) VALUES ('new.example', 1, 0, 0)",
      "UPDATE zones SET notified_serial = serial WHERE name = 'new.example'",
      "DELETE FROM zones WHERE name = 'new.example'",
      "UPDATE catalog SET notified_serial = serial",
  };
  for (const char* sql : changes) {
    const std::int64_t before = version();
    exec_sql(fixture_.path(), sql);
    EXPECT_NE(version(), before) << sql;
  }
}

TEST_F(ZoneTableTest, AnotherConfigurationHasATableOfItsOwn) {
  auto a = connection();
  auto b = connection();
  Answerer plain(*a, config_);
  Config with_catalog = config_;
  with_catalog.catalog = "catalog.invalid";
  Answerer cataloged(*b, with_catalog);
  EXPECT_NE(table_of(plain), table_of(cataloged));
  EXPECT_EQ(plain.zones().size(), 2u);
  EXPECT_EQ(cataloged.zones().size(), 3u);
  EXPECT_EQ(plain.find_zone("catalog.invalid"), nullptr);
}

// A connection whose snapshot began before a change gets the table of its snapshot, not the
// newer one another connection has shared since (pdns's threads check at different times).
TEST_F(ZoneTableTest, AnOlderSnapshotGetsTheTableOfItsVersion) {
  auto a = connection();
  auto b = connection();
  const std::string key = ZoneTable::key(*a, config_);
  ASSERT_EQ(ZoneTable::key(*b, config_), key);
  ASSERT_TRUE(a->begin_read().ok());
  auto old_table = ZoneTable::current(*a, config_, key, nullptr);  // the snapshot starts here
  ASSERT_TRUE(old_table.ok()) << old_table.status().message();
  fixture_.add(fixture_.zone("example.com"),
               test::new_certificate("rsa.pem", "alice@example.com", {RecordParams{}}, 600));
  Answerer new_reader(*b, config_);
  const auto* new_table = table_of(new_reader);
  const std::uint32_t new_serial = new_reader.find_zone("example.com")->zone.serial;
  auto again = ZoneTable::current(*a, config_, key, nullptr);  // still in a's snapshot
  a->end_read();
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_NE(&(*again)->zones(), new_table);
  EXPECT_EQ((*again)->version(), (*old_table)->version());
  EXPECT_NE((*again)->find("example.com")->zone.serial, new_serial);
  EXPECT_FALSE((*again)->find("example.com")->zone.has_records);
}

// tests/data/db/store-v6.db (see its README): two zones, two records. The migration adds the
// version, and from then on a change to a zone moves it and gives the Answerers a new table.
TEST(ZoneTableMigration, Version6StoresGetAVersionThatTheirZonesMove) {
  test::TempDir dir;
  const std::string path = dir.file("store.db");
  std::filesystem::copy_file(test::data_path("db/store-v6.db"), path);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto before = Store::init(path);
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_EQ(*before, 6);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM zone_table_version"), 1);
  EXPECT_EQ(raw_int(path,
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name "
                    "LIKE '%_moves_version'"),
            4);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM records"), 2);
  auto store = Store::open(path, StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.status().message();
  Config config;
  Answerer answerer(**store, config);
  ASSERT_TRUE(answerer.refresh().ok());
  ASSERT_EQ(answerer.zones().size(), 2u);
  const auto* table = &answerer.zones();
  const std::int64_t version = raw_int(path, "SELECT version FROM zone_table_version");
  exec_sql(path, "UPDATE zones SET serial = serial + 1 WHERE name = 'example.com'");
  EXPECT_NE(raw_int(path, "SELECT version FROM zone_table_version"), version);
  ASSERT_TRUE(answerer.refresh().ok());
  EXPECT_NE(&answerer.zones(), table);
  EXPECT_EQ(answerer.find_zone("example.com")->zone.serial,
            static_cast<std::uint32_t>(
                raw_int(path, "SELECT serial FROM zones WHERE name = 'example.com'")));
}

}  // namespace
}  // namespace smimea
