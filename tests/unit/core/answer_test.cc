// The Answerer: what PowerDNS gets for each (qname, qtype), from a real store.
#include "smimea/answer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../sqlite_files.h"
#include "../store_util.h"
#include "smimea/hex.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::StoreFixture;

// Records as "qname TYPE ttl content[ (not auth)]", SMIMEA content as "u s m hex".
class Lines : public RecordSink {
 public:
  void add_text(std::string_view qname, QType qtype, std::uint32_t ttl, std::int64_t zone_id,
                std::string_view content, bool auth) override {
    lines.push_back(std::string(qname) + " " + std::string(qtype_name(qtype)) + " " +
                    std::to_string(ttl) + " " + std::string(content) + (auth ? "" : " (not auth)"));
    zone_ids.push_back(zone_id);
  }
  void add_smimea(std::string_view qname, std::int64_t zone_id, const RecordView& rr) override {
    lines.push_back(std::string(qname) + " SMIMEA " + std::to_string(rr.ttl) + " " +
                    std::to_string(static_cast<int>(rr.params.usage)) + " " +
                    std::to_string(static_cast<int>(rr.params.selector)) + " " +
                    std::to_string(static_cast<int>(rr.params.matching_type)) + " " +
                    to_hex(rr.data, rr.size));
    zone_ids.push_back(zone_id);
  }
  void add_ent(std::string_view qname, std::int64_t zone_id) override {
    lines.push_back(std::string(qname) + " ENT");
    zone_ids.push_back(zone_id);
  }
  std::vector<std::string> lines;
  std::vector<std::int64_t> zone_ids;
};

const char* const kAlice = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db";
const char* const kBob = "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd";
const char* const kCarol = "4c26d9074c27d89ede59270c0ac14b71e071b15239519f75474b2f3b";
const RecordParams kSpki256{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256};

class AnswerTest : public ::testing::Test {
 protected:
  AnswerTest() {
    config_.database = fixture_.path();
    config_.nameservers = {"ns1.example.net.", "ns2.example.net."};
    config_.soa.mname = "ns1.example.net.";
    config_.soa.rname = "hostmaster.example.net.";
    config_.soa.ttl = 1800;
    config_.ns_ttl = 7200;
    zones_ = fixture_.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                 {"_smimecert.example.org", ZoneMode::kAuthoritative},
                                 {"example.net", ZoneMode::kOverlay},
                                 {"empty.example", ZoneMode::kAuthoritative}});
    fixture_.add(zones_[0], new_certificate("rsa.pem", "alice@example.com", {kSpki256}, 600));
    fixture_.add(zones_[0], new_certificate("ec.pem", "bob@example.com", {kSpki256}, 700));
    fixture_.add(zones_[0], new_certificate("ec.pem", "bob@example.com", {RecordParams{}}, 700));
    fixture_.add(zones_[1], new_certificate("ed25519.pem", "carol@example.org", {kSpki256}, 800));
    fixture_.add(zones_[2], new_certificate("rsa.pem", "alice@example.net", {kSpki256}, 900));
  }

  std::vector<std::string> lookup(std::string_view qname, QType qtype = QType::kAny) {
    Lines sink;
    const Status s = answerer_.lookup(qname, qtype, sink);
    EXPECT_TRUE(s.ok()) << s.message();
    return sink.lines;
  }

  // The zone as the store has it now: read on a connection of its own, since the Answerer's
  // (fixture_.store()) may be inside a snapshot it holds.
  Zone zone_now(const std::string& name) {
    auto reader = Store::open(fixture_.path(), StoreOptions{});
    EXPECT_TRUE(reader.ok());
    auto z = reader.ok() ? (*reader)->find_zone(name) : Result<Zone>(Zone{});
    EXPECT_TRUE(z.ok()) << name;
    return z.ok() ? *z : Zone{};
  }
  std::string soa(const std::string& zone) {
    return "ns1.example.net. hostmaster.example.net. " + std::to_string(zone_now(zone).serial) +
           " 10800 3600 1209600 300";
  }

  // Adds dave@example.com ("3 1 1") on a connection of its own, as smimea-ctl would.
  void add_dave() {
    auto writer = Store::open(fixture_.path(), StoreOptions{});
    ASSERT_TRUE(writer.ok());
    auto zone = (*writer)->find_zone("example.com");
    ASSERT_TRUE(zone.ok());
    ASSERT_TRUE((*writer)->begin().ok());
    ASSERT_TRUE((*writer)
                    ->add_certificate(
                        *zone, new_certificate("ed25519.pem", "dave@example.com", {kSpki256}, 600))
                    .ok());
    ASSERT_TRUE((*writer)->commit().ok());
  }
  std::string dave() { return owner_name(owner_hash("dave"), "example.com"); }

  StoreFixture fixture_;
  Config config_;
  std::vector<Zone> zones_;
  Answerer answerer_{fixture_.store(), config_};
};

using Lines_ = std::vector<std::string>;

TEST_F(AnswerTest, SoaAndNsAtTheApex) {
  EXPECT_EQ(lookup("example.com."), (Lines_{"example.com. SOA 1800 " + soa("example.com"),
                                            "example.com. NS 7200 ns1.example.net.",
                                            "example.com. NS 7200 ns2.example.net."}));
  EXPECT_EQ(lookup("example.com", QType::kSoa),
            Lines_{"example.com SOA 1800 " + soa("example.com")});
  EXPECT_EQ(lookup("example.com", QType::kNs), (Lines_{"example.com NS 7200 ns1.example.net.",
                                                       "example.com NS 7200 ns2.example.net."}));
  EXPECT_TRUE(lookup("example.com", QType::kSmimea).empty());
  EXPECT_TRUE(lookup("example.com", QType::kOther).empty());
}

TEST_F(AnswerTest, ApexIsCaseInsensitiveAndKeepsTheQuestionsSpelling) {
  EXPECT_EQ(lookup("ExAmple.COM.", QType::kSoa),
            Lines_{"ExAmple.COM. SOA 1800 " + soa("example.com")});
}

TEST_F(AnswerTest, EmptyZoneHasSoaButNoEnt) {
  EXPECT_EQ(lookup("empty.example", QType::kSoa).size(), 1u);
  EXPECT_TRUE(lookup("_smimecert.empty.example").empty());
}

TEST_F(AnswerTest, EntAtSmimecertOnlyWhenTheZoneHasRecords) {
  EXPECT_EQ(lookup("_smimecert.example.com."), Lines_{"_smimecert.example.com. ENT"});
  EXPECT_EQ(lookup("_SMIMECERT.Example.Com"), Lines_{"_SMIMECERT.Example.Com ENT"});
  EXPECT_TRUE(lookup("_smimecert.example.com.", QType::kSoa).empty());
  EXPECT_TRUE(lookup("_smimecert.example.com.", QType::kSmimea).empty());
}

TEST_F(AnswerTest, SmimeaLookup) {
  const std::string qname = std::string(kAlice) + "._smimecert.example.com.";
  EXPECT_EQ(lookup(qname, QType::kSmimea),
            Lines_{qname + " SMIMEA 600 3 1 1 " + test::expected_hex("rsa", 1, 1)});
  EXPECT_EQ(lookup(qname, QType::kAny),
            Lines_{qname + " SMIMEA 600 3 1 1 " + test::expected_hex("rsa", 1, 1)});
}

TEST_F(AnswerTest, SmimeaLookupIsCaseInsensitive) {
  std::string upper = std::string(kAlice) + "._SMIMECERT.EXAMPLE.COM";
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(lookup(upper, QType::kSmimea),
            Lines_{upper + " SMIMEA 600 3 1 1 " + test::expected_hex("rsa", 1, 1)});
}

TEST_F(AnswerTest, RrsetInInsertionOrder) {
  const std::string qname = std::string(kBob) + "._smimecert.example.com";
  EXPECT_EQ(lookup(qname), (Lines_{qname + " SMIMEA 700 3 1 1 " + test::expected_hex("ec", 1, 1),
                                   qname + " SMIMEA 700 3 0 0 " + test::expected_hex("ec", 0, 0)}));
}

TEST_F(AnswerTest, TypedLookupsAreFiltered) {
  const std::string qname = std::string(kAlice) + "._smimecert.example.com.";
  EXPECT_TRUE(lookup(qname, QType::kSoa).empty());
  EXPECT_TRUE(lookup(qname, QType::kNs).empty());
  EXPECT_TRUE(lookup(qname, QType::kOther).empty());
}

TEST_F(AnswerTest, UnknownOwnerGivesNothing) {
  EXPECT_TRUE(lookup(std::string(kCarol) + "._smimecert.example.com.").empty());
}

TEST_F(AnswerTest, OwnerInTheWrongZoneGivesNothing) {
  // alice's record is in example.com and example.net, not in _smimecert.example.org.
  EXPECT_TRUE(lookup(std::string(kAlice) + "._smimecert.example.org.").empty());
}

TEST_F(AnswerTest, DelegatedSmimecertZone) {
  const std::string apex = "_smimecert.example.org.";
  EXPECT_EQ(lookup(apex),
            (Lines_{apex + " SOA 1800 " + soa("_smimecert.example.org"),
                    apex + " NS 7200 ns1.example.net.", apex + " NS 7200 ns2.example.net."}));
  const std::string qname = std::string(kCarol) + "._smimecert.example.org.";
  EXPECT_EQ(lookup(qname, QType::kSmimea),
            Lines_{qname + " SMIMEA 800 3 1 1 " + test::expected_hex("ed25519", 1, 1)});
  // The parent is not ours.
  EXPECT_TRUE(lookup("example.org.").empty());
}

TEST_F(AnswerTest, OverlayZoneGivesNoSoaOrNs) {
  EXPECT_TRUE(lookup("example.net.").empty());
  EXPECT_TRUE(lookup("example.net.", QType::kSoa).empty());
  EXPECT_TRUE(lookup("example.net.", QType::kNs).empty());
  const std::string qname = std::string(kAlice) + "._smimecert.example.net.";
  EXPECT_EQ(lookup(qname, QType::kSmimea),
            Lines_{qname + " SMIMEA 900 3 1 1 " + test::expected_hex("rsa", 1, 1)});
  // The records need the empty non-terminal above them in the overlay zone as well.
  EXPECT_EQ(lookup("_smimecert.example.net."), Lines_{"_smimecert.example.net. ENT"});
}

TEST_F(AnswerTest, NamesOutsideTheZonesGiveNothing) {
  for (const std::string& qname :
       {std::string("example.info."), std::string("com."), std::string("."), std::string(""),
        std::string("www.example.com."), std::string("_smimecert.example.info."),
        std::string(kAlice) + "._smimecert.example.info.",
        std::string(kAlice) + "._smimecert.sub.example.com.", std::string(kAlice) + ".example.com.",
        std::string(300, 'a'), std::string(kAlice) + "._smimecert." + std::string(250, 'a')}) {
    EXPECT_TRUE(lookup(qname).empty()) << qname;
  }
}

TEST_F(AnswerTest, SeesChangesFromAnotherConnection) {
  EXPECT_TRUE(lookup("example.info.", QType::kSoa).empty());
  auto writer = Store::open(fixture_.path(), StoreOptions{});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->begin().ok());
  ASSERT_TRUE((*writer)->add_zone("example.info", ZoneMode::kAuthoritative).ok());
  ASSERT_TRUE((*writer)->commit().ok());
  EXPECT_EQ(lookup("example.info.", QType::kSoa).size(), 1u);
  ASSERT_NE(answerer_.find_zone("EXAMPLE.info."), nullptr);
}

// The delegated layout adopted after alice and bob were published in example.com: queries
// for their owners go to the new _smimecert.example.com zone from then on, and find them
// there, with the new zone's id.
TEST_F(AnswerTest, ASmimecertZoneAddedLaterServesTheDomainsOwners) {
  const std::string qname = std::string(kAlice) + "._smimecert.example.com.";
  const Lines_ alice{qname + " SMIMEA 600 3 1 1 " + test::expected_hex("rsa", 1, 1)};
  EXPECT_EQ(lookup(qname), alice);
  auto writer = Store::open(fixture_.path(), StoreOptions{});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->begin().ok());
  int moved = -1;
  auto sub = (*writer)->add_zone("_smimecert.example.com", ZoneMode::kAuthoritative,
                                 ZoneKind::kMaster, &moved);
  ASSERT_TRUE(sub.ok()) << sub.status().message();
  ASSERT_TRUE((*writer)->commit().ok());
  EXPECT_EQ(moved, 2);  // alice and bob; alice@example.net stays where it is
  ASSERT_TRUE(answerer_.refresh().ok());
  Lines sink;
  ASSERT_TRUE(answerer_.lookup(qname, QType::kAny, sink).ok());
  EXPECT_EQ(sink.lines, alice);
  EXPECT_EQ(sink.zone_ids, std::vector<std::int64_t>{sub->id});
  EXPECT_EQ(lookup(std::string(kAlice) + "._smimecert.example.net.").size(), 1u);
  // Both apexes answer.
  EXPECT_EQ(lookup("example.com.", QType::kSoa).size(), 1u);
  EXPECT_EQ(lookup("_smimecert.example.com.", QType::kSoa).size(), 1u);
}

// Issue 17 (1): a zone and its _smimecert child form a delegation; answers follow pdns's zone
// id. (The DS from the child's keys: dnskey_test.cc and test_delegation.py.)
TEST_F(AnswerTest, RegressIssue17TheParentDelegatesItsSmimecertChild) {
  auto writer = Store::open(fixture_.path(), StoreOptions{});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->begin().ok());
  auto sub = (*writer)->add_zone("_smimecert.example.com", ZoneMode::kAuthoritative);
  ASSERT_TRUE(sub.ok()) << sub.status().message();
  ASSERT_TRUE((*writer)->commit().ok());
  ASSERT_TRUE(answerer_.refresh().ok());
  const std::int64_t parent = zones_[0].id, child = sub->id;
  auto ask = [&](std::string_view qname, QType qtype, std::int64_t zone_id) {
    Lines sink;
    EXPECT_TRUE(answerer_.lookup(qname, qtype, sink, zone_id).ok());
    return sink.lines;
  };
  const std::string cut = "_smimecert.example.com.";
  // In the parent's context: the delegation point, NS not authoritative, no SOA, no DS (the
  // child has no keys: an insecure delegation).
  EXPECT_EQ(ask(cut, QType::kAny, parent), (Lines_{cut + " NS 7200 ns1.example.net. (not auth)",
                                                   cut + " NS 7200 ns2.example.net. (not auth)"}));
  EXPECT_TRUE(ask(cut, QType::kSoa, parent).empty());
  EXPECT_TRUE(ask(cut, QType::kDs, parent).empty());
  // In the child's context, or without one: the child's apex.
  EXPECT_EQ(ask(cut, QType::kSoa, child),
            Lines_{cut + " SOA 1800 " + soa("_smimecert.example.com")});
  EXPECT_EQ(ask(cut, QType::kSoa, -1).size(), 1u);
  // Below the cut the parent has nothing; the child has the owners.
  const std::string qname = std::string(kAlice) + "._smimecert.example.com.";
  EXPECT_TRUE(ask(qname, QType::kAny, parent).empty());
  EXPECT_EQ(ask(qname, QType::kAny, child).size(), 1u);
  EXPECT_EQ(ask(qname, QType::kAny, -1).size(), 1u);
  // Another zone's id (of ours, or another backend's): nothing for authoritative zones.
  EXPECT_TRUE(ask("example.com.", QType::kAny, zones_[3].id).empty());
  EXPECT_TRUE(ask(qname, QType::kAny, 987654).empty());
  // Overlay zones are asked with the owning backend's ids.
  EXPECT_EQ(ask(std::string(kAlice) + "._smimecert.example.net.", QType::kAny, 987654).size(), 1u);
  // The parent's transfer carries the cut.
  Lines listed;
  ASSERT_TRUE(answerer_.list(parent, listed).ok());
  EXPECT_EQ(listed.lines, (Lines_{"example.com. SOA 1800 " + soa("example.com"),
                                  "example.com. NS 7200 ns1.example.net.",
                                  "example.com. NS 7200 ns2.example.net.",
                                  cut + " NS 7200 ns1.example.net. (not auth)",
                                  cut + " NS 7200 ns2.example.net. (not auth)"}));
}

// pdns asks every backend about every name, also from its NOTIFY and secondary thread, where
// an error stops pdns: a store that cannot be read fails lookups of our names only.
TEST_F(AnswerTest, AStoreErrorFailsOnlyTheNamesOfOurZones) {
  ASSERT_EQ(lookup("example.com.", QType::kSoa).size(), 1u);
  add_dave();  // a commit: the next check for changes reloads the zone table
  std::this_thread::sleep_for(Answerer::kRecheckInterval + std::chrono::milliseconds(1));
  fixture_.store().release_if_stale();
  test::damage_table(fixture_.path(), "zones");
  for (const char* name : {"example.info.", "www.example.info.", "_smimecert.other.example."}) {
    Lines sink;
    const Status s = answerer_.lookup(name, QType::kAny, sink);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    EXPECT_TRUE(sink.lines.empty()) << name;
  }
  EXPECT_FALSE(answerer_.knows("example.info."));
  for (const std::string& name :
       {std::string("example.com."), std::string("_smimecert.example.com."),
        std::string(kAlice) + "._smimecert.example.com.", std::string("www.example.com.")}) {
    std::this_thread::sleep_for(Answerer::kRecheckInterval + std::chrono::milliseconds(1));
    Lines sink;
    EXPECT_FALSE(answerer_.lookup(name, QType::kAny, sink).ok()) << name;
  }
  EXPECT_TRUE(answerer_.knows("WWW.example.com"));
}

// A check for changes covers the lookups of the next kRecheckInterval (the rest of pdns's
// question); the apex lookup of a question that starts later sees the new serial.
TEST_F(AnswerTest, SeesANewSerialOnceTheLastCheckIsOlderThanTheInterval) {
  const std::string before = soa("example.com");
  EXPECT_EQ(lookup("example.com.", QType::kSoa), Lines_{"example.com. SOA 1800 " + before});
  add_dave();
  const std::string after = soa("example.com");
  ASSERT_NE(after, before);
  std::this_thread::sleep_for(Answerer::kRecheckInterval + std::chrono::milliseconds(1));
  EXPECT_EQ(lookup("example.com.", QType::kSoa), Lines_{"example.com. SOA 1800 " + after});
}

// Lookups keep their read snapshot for kRecheckInterval (see Store::hold_read).
class HoldTest : public AnswerTest {};

TEST_F(HoldTest, AnOwnerAddedIsFoundOnceTheSnapshotIsOlderThanTheInterval) {
  EXPECT_EQ(lookup("example.com.").size(), 3u);  // the apex: a snapshot, held
  EXPECT_TRUE(lookup(dave()).empty());
  add_dave();
  std::this_thread::sleep_for(Answerer::kRecheckInterval + std::chrono::milliseconds(1));
  EXPECT_EQ(lookup(dave()).size(), 1u);  // no apex lookup between: the owner's renews it
}

TEST_F(HoldTest, RefreshAndListingsDoNotReadInTheHeldSnapshot) {
  EXPECT_EQ(lookup("example.com.").size(), 3u);
  add_dave();
  // Within the interval lookups may still read the old snapshot; refresh() and a listing
  // start from the store as it is.
  ASSERT_TRUE(answerer_.refresh().ok());
  const ZoneEntry* zone = answerer_.find_zone("example.com");
  ASSERT_NE(zone, nullptr);
  EXPECT_EQ(zone->zone.serial, zone_now("example.com").serial);
  EXPECT_EQ(lookup("example.com.").size(), 3u);
  Lines listed;
  ASSERT_TRUE(answerer_.list(zone->zone.id, listed).ok());
  bool has_dave = false;
  for (const std::string& line : listed.lines) has_dave |= line.rfind(dave() + " ", 0) == 0;
  EXPECT_TRUE(has_dave);
  EXPECT_EQ(lookup(dave()).size(), 1u);  // and lookups go on after the listing
}

// Lookups with pauses around kRecheckInterval, over a few rounds of the releasing thread: it
// ends some snapshots while the owner's thread is idle, lookups renew them, and every answer
// stays the same. (Also a data race check under -fsanitize=thread.)
TEST_F(HoldTest, LookupsAndTheReleasingThreadTakeTurns) {
  const std::string alice = owner_name(owner_hash("alice"), "example.com");
  const auto first = lookup(alice);
  ASSERT_EQ(first.size(), 1u);
  const auto end = std::chrono::steady_clock::now() + 3 * Store::kReleaseInterval;
  for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
    ASSERT_EQ(lookup("example.com.").size(), 3u);
    ASSERT_EQ(lookup(alice), first);
    std::this_thread::sleep_for(std::chrono::microseconds(500 * (i % 5)));
  }
}

// An idle Answerer lets go of its snapshot: a writer's checkpoint can then empty the WAL.
// (Held, the snapshot keeps the WAL frames committed after it: TRUNCATE reports busy.)
TEST_F(HoldTest, AnIdleSnapshotIsReleasedSoTheWalCanBeEmptied) {
  EXPECT_EQ(lookup("example.com.").size(), 3u);
  add_dave();
  const auto deadline = std::chrono::steady_clock::now() + 10 * Store::kReleaseInterval;
  int busy = -1;
  int wal_frames = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    test::wal_checkpoint_truncate(fixture_.path(), &busy, &wal_frames);
    if (busy == 0 && wal_frames == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(busy, 0);
  EXPECT_EQ(wal_frames, 0);
}

TEST_F(AnswerTest, ZoneTable) {
  ASSERT_TRUE(answerer_.refresh().ok());
  ASSERT_EQ(answerer_.zones().size(), 4u);
  EXPECT_EQ(answerer_.zones()[0].zone.name, "_smimecert.example.org");
  EXPECT_EQ(answerer_.zones()[0].owner_suffix, "._smimecert.example.org.");
  EXPECT_EQ(answerer_.zones()[1].zone.name, "empty.example");
  EXPECT_EQ(answerer_.zones()[2].owner_suffix, "._smimecert.example.com.");
  EXPECT_EQ(answerer_.zones()[2].fqdn, "example.com.");
  const ZoneEntry* z = answerer_.find_zone("Example.Com.");
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(answerer_.find_zone_by_id(z->zone.id), z);
  EXPECT_EQ(answerer_.find_zone("example"), nullptr);
  EXPECT_EQ(answerer_.find_zone_by_id(12345), nullptr);
}

TEST_F(AnswerTest, ListInAxfrOrder) {
  const ZoneEntry* z = nullptr;
  ASSERT_TRUE(answerer_.refresh().ok());
  z = answerer_.find_zone("example.com");
  ASSERT_NE(z, nullptr);
  Lines sink;
  ASSERT_TRUE(answerer_.list(z->zone.id, sink).ok());
  const std::string alice = std::string(kAlice) + "._smimecert.example.com.";
  const std::string bob = std::string(kBob) + "._smimecert.example.com.";
  EXPECT_EQ(sink.lines, (Lines_{"example.com. SOA 1800 " + soa("example.com"),
                                "example.com. NS 7200 ns1.example.net.",
                                "example.com. NS 7200 ns2.example.net.",
                                alice + " SMIMEA 600 3 1 1 " + test::expected_hex("rsa", 1, 1),
                                bob + " SMIMEA 700 3 1 1 " + test::expected_hex("ec", 1, 1),
                                bob + " SMIMEA 700 3 0 0 " + test::expected_hex("ec", 0, 0)}));
  for (std::int64_t id : sink.zone_ids) EXPECT_EQ(id, z->zone.id);
}

TEST_F(AnswerTest, ListDelegatedAndOverlayZones) {
  ASSERT_TRUE(answerer_.refresh().ok());
  Lines org;
  ASSERT_TRUE(answerer_.list(answerer_.find_zone("_smimecert.example.org")->zone.id, org).ok());
  ASSERT_EQ(org.lines.size(), 4u);
  EXPECT_EQ(org.lines[0].substr(0, 28), "_smimecert.example.org. SOA ");
  EXPECT_EQ(org.lines[3], std::string(kCarol) + "._smimecert.example.org. SMIMEA 800 3 1 1 " +
                              test::expected_hex("ed25519", 1, 1));
  Lines net;
  ASSERT_TRUE(answerer_.list(answerer_.find_zone("example.net")->zone.id, net).ok());
  EXPECT_EQ(net.lines, Lines_{std::string(kAlice) + "._smimecert.example.net. SMIMEA 900 3 1 1 " +
                              test::expected_hex("rsa", 1, 1)});
}

TEST_F(AnswerTest, ListUnknownZoneIsNotFound) {
  Lines sink;
  const Status s = answerer_.list(98765, sink);
  EXPECT_TRUE(s.is_not_found());
  EXPECT_TRUE(sink.lines.empty());
}

// pdns's repeat of an owner lookup may be answered from the first one's rows, flagged so that
// an adapter can reuse what it built; an answer read from the store is never flagged.
TEST_F(AnswerTest, ARepeatedOwnerLookupIsFlaggedAsARepeat) {
  struct Flags : Lines {
    void add_smimea(std::string_view qname, std::int64_t zone_id, const RecordView& rr) override {
      Lines::add_smimea(qname, zone_id, rr);
      repeats.push_back(rr.repeat);
    }
    std::vector<bool> repeats;
  };
  const std::string bob = std::string(kBob) + "._smimecert.example.com.";
  const std::string alice = std::string(kAlice) + "._smimecert.example.com.";
  Flags first, second, other;
  ASSERT_TRUE(answerer_.lookup(bob, QType::kSmimea, first).ok());
  ASSERT_TRUE(answerer_.lookup(bob, QType::kSmimea, second).ok());
  ASSERT_TRUE(answerer_.lookup(alice, QType::kSmimea, other).ok());
  ASSERT_EQ(first.lines.size(), 2u);
  EXPECT_EQ(second.lines, first.lines);
  EXPECT_EQ(first.repeats, std::vector<bool>(2, false));
  // Served from the rows only within kRecheckInterval of the read: all or none.
  EXPECT_TRUE(second.repeats == std::vector<bool>(2, false) ||
              second.repeats == std::vector<bool>(2, true));
  EXPECT_EQ(other.repeats, std::vector<bool>(1, false));
}

TEST_F(AnswerTest, CountsLookups) {
  const std::uint64_t before = answerer_.lookups();
  lookup("example.com.");
  lookup("nothing.invalid.");
  EXPECT_EQ(answerer_.lookups(), before + 2);
}

TEST(ParseQtype, Names) {
  EXPECT_EQ(parse_qtype("ANY"), QType::kAny);
  EXPECT_EQ(parse_qtype("any"), QType::kAny);
  EXPECT_EQ(parse_qtype("SOA"), QType::kSoa);
  EXPECT_EQ(parse_qtype("ns"), QType::kNs);
  EXPECT_EQ(parse_qtype("SMIMEA"), QType::kSmimea);
  EXPECT_EQ(parse_qtype("smimea"), QType::kSmimea);
  EXPECT_EQ(parse_qtype("A"), QType::kOther);
  EXPECT_EQ(parse_qtype("TYPE53"), QType::kOther);
  EXPECT_EQ(parse_qtype(""), QType::kOther);
}

TEST(QtypeName, RoundTrips) {
  for (QType t : {QType::kAny, QType::kSoa, QType::kNs, QType::kSmimea, QType::kDs}) {
    EXPECT_EQ(parse_qtype(qtype_name(t)), t) << qtype_name(t);
  }
  EXPECT_EQ(qtype_name(QType::kOther), "");
}

}  // namespace
}  // namespace smimea
