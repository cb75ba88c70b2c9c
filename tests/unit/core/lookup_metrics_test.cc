// The lookup counters (lookup_metrics.h): each Answerer::lookup counts once, with the result
// the answer gives pdns; store errors and owner reads are counted too.
#include "smimea/lookup_metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "../sqlite_files.h"
#include "../store_util.h"
#include "smimea/answer.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::StoreFixture;

class Discard : public RecordSink {
 public:
  void add_text(std::string_view, QType, std::uint32_t, std::int64_t, std::string_view,
                bool) override {
    ++records;
  }
  void add_smimea(std::string_view, std::int64_t, const RecordView&) override { ++records; }
  void add_ent(std::string_view, std::int64_t) override { ++records; }
  int records = 0;
};

const char* const kAlice = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db";
const char* const kNobody = "0000000000000000000000000000000000000000000000000000000a";

// The counters' change across f().
template <class F>
LookupCounters delta(F f) {
  const LookupCounters before = lookup_counters();
  f();
  LookupCounters after = lookup_counters();
  for (int i = 0; i < kLookupResults; ++i) after.lookups[i] -= before.lookups[i];
  after.store_errors -= before.store_errors;
  after.store_reads -= before.store_reads;
  after.store_read_ns -= before.store_read_ns;
  return after;
}

std::string counts(const LookupCounters& c) {
  std::string out;
  for (int i = 0; i < kLookupResults; ++i) {
    out += std::string(lookup_result_name(static_cast<LookupResult>(i))) + "=" +
           std::to_string(c.lookups[i]) + " ";
  }
  return out + "errors=" + std::to_string(c.store_errors) +
         " reads=" + std::to_string(c.store_reads);
}

class LookupMetricsTest : public ::testing::Test {
 protected:
  LookupMetricsTest() {
    config_.database = fixture_.path();
    config_.nameservers = {"ns1.example.net."};
    zones_ = fixture_.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                 {"example.net", ZoneMode::kOverlay},
                                 {"empty.example", ZoneMode::kAuthoritative}});
    fixture_.add(zones_[0], new_certificate("rsa.pem", "alice@example.com", {RecordParams{}}, 600));
    fixture_.add(zones_[1], new_certificate("rsa.pem", "alice@example.net", {RecordParams{}}, 600));
  }

  // The one result a lookup counted ("" if it counted none or several, or failed).
  std::string result_of(const std::string& qname, QType qtype, std::int64_t zone_id = -1) {
    Status s;
    const LookupCounters d = delta([&] {
      Discard sink;
      s = answerer_.lookup(qname, qtype, sink, zone_id);
    });
    EXPECT_TRUE(s.ok()) << qname << ": " << s.message();
    std::string result;
    std::uint64_t total = 0;
    for (int i = 0; i < kLookupResults; ++i) {
      total += d.lookups[i];
      if (d.lookups[i] == 1) result = lookup_result_name(static_cast<LookupResult>(i));
    }
    return total == 1 && d.store_errors == 0 ? result : "counted: " + counts(d);
  }

  StoreFixture fixture_;
  Config config_;
  std::vector<Zone> zones_;
  Answerer answerer_{fixture_.store(), config_};
};

TEST_F(LookupMetricsTest, EachLookupCountsOnceWithTheAnswersResult) {
  const std::string alice = std::string(kAlice) + "._smimecert.example.com.";
  const std::string nobody = std::string(kNobody) + "._smimecert.example.com.";
  struct Case {
    std::string qname;
    QType qtype;
    const char* result;
  };
  const Case cases[] = {
      {"example.com.", QType::kSoa, "answer"},
      {"EXAMPLE.com", QType::kAny, "answer"},
      {"example.com.", QType::kSmimea, "nodata"},  // the apex, a type we lack
      {"example.com.", QType::kOther, "nodata"},
      {alice, QType::kSmimea, "answer"},
      {alice, QType::kAny, "answer"},
      {alice, QType::kNs, "nodata"},  // pdns's referral check: SMIMEA is all there is
      {nobody, QType::kSmimea, "nxdomain"},
      {nobody, QType::kAny, "nxdomain"},
      {"_smimecert.example.com.", QType::kAny, "nodata"},  // the ENT
      {"_smimecert.example.com.", QType::kNs, "nodata"},
      {"_smimecert.empty.example.", QType::kAny, "nxdomain"},  // no records: no ENT
      {"www.example.com.", QType::kOther, "nxdomain"},
      {"*.example.com.", QType::kAny, "nxdomain"},
      {"example.info.", QType::kSoa, "not_ours"},
      {"com.", QType::kSoa, "not_ours"},
      {std::string(kAlice) + "._smimecert.example.info.", QType::kAny, "not_ours"},
      {"example.net.", QType::kSoa, "not_ours"},  // an overlay zone's apex is its owner's
      {std::string(kAlice) + "._smimecert.example.net.", QType::kAny, "answer"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(result_of(c.qname, c.qtype), c.result) << c.qname << " " << qtype_name(c.qtype);
  }
  // Asked in another zone's context: not ours there.
  EXPECT_EQ(result_of(alice, QType::kAny, zones_[2].id), "not_ours");
  EXPECT_EQ(result_of("example.com.", QType::kSoa, zones_[2].id), "not_ours");
}

TEST_F(LookupMetricsTest, OwnerReadsAreCountedAndTimedButNotTheirRepeat) {
  const std::string alice = std::string(kAlice) + "._smimecert.example.com.";
  Discard warm;
  ASSERT_TRUE(answerer_.lookup("example.com.", QType::kSoa, warm).ok());
  const LookupCounters d = delta([&] {
    Discard sink;
    EXPECT_TRUE(answerer_.lookup(alice, QType::kAny, sink).ok());
    EXPECT_TRUE(answerer_.lookup(alice, QType::kAny, sink).ok());  // pdns's repeat
    EXPECT_EQ(sink.records, 2);
  });
  EXPECT_EQ(d.lookups[static_cast<int>(LookupResult::kAnswer)], 2u);
  // The repeat comes within kRecheckInterval on a fast machine; never more than two reads.
  EXPECT_GE(d.store_reads, 1u);
  EXPECT_LE(d.store_reads, 2u);
  EXPECT_GT(d.store_read_ns, 0u);
}

TEST_F(LookupMetricsTest, StoreErrorsAreCountedAndNotAsAResult) {
  Discard warm;
  ASSERT_TRUE(answerer_.lookup("example.com.", QType::kSoa, warm).ok());
  // A commit, so the next check for changes reloads the zone table, which is then damaged.
  {
    auto writer = Store::open(fixture_.path(), StoreOptions{});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->begin().ok());
    ASSERT_TRUE((*writer)->add_zone("example.org", ZoneMode::kAuthoritative).ok());
    ASSERT_TRUE((*writer)->commit().ok());
  }
  std::this_thread::sleep_for(Answerer::kRecheckInterval + std::chrono::milliseconds(1));
  fixture_.store().release_if_stale();
  test::damage_table(fixture_.path(), "zones");
  const LookupCounters ours = delta([&] {
    Discard sink;
    EXPECT_FALSE(answerer_.lookup("www.example.com.", QType::kAny, sink).ok());
  });
  EXPECT_EQ(ours.store_errors, 1u) << counts(ours);
  for (int i = 0; i < kLookupResults; ++i) EXPECT_EQ(ours.lookups[i], 0u) << counts(ours);
  std::this_thread::sleep_for(Answerer::kRecheckInterval + std::chrono::milliseconds(1));
  const LookupCounters theirs = delta([&] {
    Discard sink;
    EXPECT_TRUE(answerer_.lookup("example.info.", QType::kAny, sink).ok());
  });
  EXPECT_EQ(theirs.store_errors, 1u) << counts(theirs);
  EXPECT_EQ(theirs.lookups[static_cast<int>(LookupResult::kNotOurs)], 1u) << counts(theirs);
}

// Each Answerer counts in its own set; the process's counters sum them, and keep the counts of
// an Answerer gone (pdns ends a backend instance after a transfer, a remote connection closes).
TEST_F(LookupMetricsTest, TheCountsOfEveryAnswererLiveOrGoneAreSummed) {
  constexpr int kAnswer = static_cast<int>(LookupResult::kAnswer);
  const std::uint64_t before = lookup_counters().lookups[kAnswer];
  std::uint64_t while_alive = 0;
  {
    Answerer other(fixture_.store(), config_);
    Discard sink;
    EXPECT_TRUE(answerer_.lookup("example.com.", QType::kSoa, sink).ok());
    EXPECT_TRUE(other.lookup("example.com.", QType::kSoa, sink).ok());
    EXPECT_TRUE(other.lookup("example.com.", QType::kNs, sink).ok());
    while_alive = lookup_counters().lookups[kAnswer] - before;
  }
  EXPECT_EQ(while_alive, 3u);
  EXPECT_EQ(lookup_counters().lookups[kAnswer] - before, 3u);
}

TEST(LookupMetrics, PrometheusText) {
  const std::string text = render_lookup_metrics();
  for (const char* line :
       {"# TYPE smimea_lookups_total counter\n", "smimea_lookups_total{result=\"answer\"} ",
        "smimea_lookups_total{result=\"nodata\"} ", "smimea_lookups_total{result=\"nxdomain\"} ",
        "smimea_lookups_total{result=\"not_ours\"} ", "smimea_store_errors_total ",
        "# TYPE smimea_store_read_seconds summary\n", "smimea_store_read_seconds_sum ",
        "smimea_store_read_seconds_count "}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace smimea
