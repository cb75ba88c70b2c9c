// Micro-benchmarks of the query hot path, against a store of 100,000 records in 100 zones
// (10% "3 0 0" with a 925-byte certificate, 90% "3 1 1"), built once in a temporary directory:
//   Answerer::lookup   hit / hit_full / miss / apex / ent, into a sink that only counts
//   Handler::handle    the same questions as pdns's request lines, to the reply line
//   Handler question  the lookups pdns 4.7 sends for one question with its caches off:
//                     apex, owner, _smimecert, owner (hit); the same plus *._smimecert,
//                     _smimecert and *.<zone> (nxdomain)
// Names rotate through 4096 random owners so that no single B-tree path stays hot.
// Run: lookup_bench [--benchmark_filter=Handler]; LOOKUP_BENCH_RECORDS overrides the size.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "handler.h"
#include "smimea/answer.h"
#include "smimea/config.h"
#include "smimea/owner_name.h"
#include "smimea/store.h"

namespace {

using smimea::Answerer;
using smimea::Config;
using smimea::QType;

constexpr int kZones = 100;
constexpr std::size_t kNames = 4096;

enum class Kind { kHit, kHitFull, kMiss, kApex, kEnt };

std::string zone_name(int z) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "dom%03d.example.com", z + 1);
  return buf;
}

[[noreturn]] void die(const smimea::Status& s) {
  std::fprintf(stderr, "lookup_bench: %s\n", s.message().c_str());
  std::exit(1);
}

// The store and the names to ask for, built on first use and removed at exit.
struct Fixture {
  std::string dir;
  Config config;
  std::vector<std::string> names[5];  // by Kind
  std::vector<std::int64_t> zone_ids[5];

  Fixture() {
    char tmpl[] = "/tmp/lookup_bench.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::exit(1);
    dir = tmpl;
    config.database = dir + "/smimea.db";
    config.nameservers = {"ns1.example.net.", "ns2.example.net."};
    config.soa.mname = "ns1.example.net.";
    int records = 100000;
    if (const char* env = std::getenv("LOOKUP_BENCH_RECORDS")) records = std::atoi(env);
    build(records);
  }
  ~Fixture() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((config.database + suffix).c_str());
    ::rmdir(dir.c_str());
  }

  void build(int records) {
    if (auto r = smimea::Store::init(config.database); !r.ok()) die(r.status());
    auto store = smimea::Store::open(config.database, smimea::StoreOptions{});
    if (!store.ok()) die(store.status());
    smimea::Store& s = **store;
    if (auto st = s.begin(); !st.ok()) die(st);
    std::vector<smimea::Zone> zones;
    for (int z = 0; z < kZones; ++z) {
      auto zone = s.add_zone(zone_name(z), smimea::ZoneMode::kAuthoritative);
      if (!zone.ok()) die(zone.status());
      zones.push_back(*zone);
    }
    std::mt19937_64 rng(42);
    smimea::Bytes full(925);
    for (auto& b : full) b = static_cast<std::uint8_t>(rng());
    full[0] = 0x30;
    std::vector<std::pair<std::string, int>> owners;  // (qname, zone index), 3 1 1 / 3 0 0
    std::vector<std::pair<std::string, int>> full_owners;
    for (int i = 0; i < records; ++i) {
      const int z = i % kZones;
      const std::string local = "u" + std::to_string(i);
      smimea::NewCertificate c;
      c.address = local + "@" + zone_name(z);
      c.domain = zone_name(z);
      c.der = full;
      for (std::size_t k = 0; k < c.fingerprint.size(); ++k) {
        c.fingerprint[k] = static_cast<std::uint8_t>(static_cast<unsigned>(i) >> (8 * (k % 4)));
      }
      c.subject = "CN=" + c.address;
      c.issuer = "CN=bench";
      c.serial = "01";
      c.not_before = 0;
      c.not_after = 4102444800;
      smimea::NewCertificate::Record r;
      r.owner = smimea::owner_hash(local);
      r.ttl = 3600;
      const bool is_full = i % 10 == 0;
      if (is_full) {
        r.params = smimea::RecordParams{};
        r.data = full;
      } else {
        r.params = *smimea::make_record_params(3, 1, 1);
        r.data.assign(32, static_cast<std::uint8_t>(i));
      }
      c.records.push_back(r);
      auto added = s.add_certificate(zones[static_cast<std::size_t>(z)], c);
      if (!added.ok()) die(added.status());
      (is_full ? full_owners : owners).emplace_back(smimea::owner_name(r.owner, c.domain), z);
    }
    if (auto st = s.commit(); !st.ok()) die(st);

    for (std::size_t k = 0; k < kNames; ++k) {
      const auto& hit = owners[rng() % owners.size()];
      add(Kind::kHit, hit.first, zones[static_cast<std::size_t>(hit.second)].id);
      const auto& hit_full = full_owners[rng() % full_owners.size()];
      add(Kind::kHitFull, hit_full.first, zones[static_cast<std::size_t>(hit_full.second)].id);
      const auto zi = static_cast<std::size_t>(rng() % kZones);
      smimea::OwnerHash absent{};
      for (auto& b : absent) b = static_cast<std::uint8_t>(rng());
      add(Kind::kMiss, smimea::owner_name(absent, zones[zi].name), zones[zi].id);
      add(Kind::kApex, zones[zi].name + ".", zones[zi].id);
      add(Kind::kEnt, "_smimecert." + zones[zi].name + ".", zones[zi].id);
    }
  }

  void add(Kind kind, std::string name, std::int64_t id) {
    names[static_cast<int>(kind)].push_back(std::move(name));
    zone_ids[static_cast<int>(kind)].push_back(id);
  }
};

const Fixture& fixture() {
  static Fixture f;
  return f;
}

class CountingSink : public smimea::RecordSink {
 public:
  void add_text(std::string_view, smimea::QType, std::uint32_t, std::int64_t,
                std::string_view content, bool) override {
    bytes += content.size();
  }
  void add_smimea(std::string_view, std::int64_t, const smimea::RecordView& rr) override {
    bytes += rr.size;
  }
  void add_ent(std::string_view, std::int64_t) override { ++bytes; }
  std::size_t bytes = 0;
};

void BM_AnswererLookup(benchmark::State& state, Kind kind) {
  const Fixture& f = fixture();
  auto store = smimea::Store::open(f.config.database, smimea::StoreOptions{true, 200, 65536});
  if (!store.ok()) die(store.status());
  Answerer answerer(**store, f.config);
  const auto& names = f.names[static_cast<int>(kind)];
  CountingSink sink;
  std::size_t i = 0;
  for (auto _ : state) {
    const smimea::Status s = answerer.lookup(names[i++ % names.size()], QType::kAny, sink);
    if (!s.ok()) die(s);
  }
  benchmark::DoNotOptimize(sink.bytes);
  state.SetItemsProcessed(state.iterations());
}

std::string lookup_line(const std::string& qname, std::int64_t zone_id);

void BM_HandlerHandle(benchmark::State& state, Kind kind) {
  const Fixture& f = fixture();
  auto handler = smimea::remote::Handler::create(f.config);
  if (!handler.ok()) die(handler.status());
  std::vector<std::string> lines;
  const int k = static_cast<int>(kind);
  for (std::size_t n = 0; n < f.names[k].size(); ++n) {
    lines.push_back(lookup_line(f.names[k][n], f.zone_ids[k][n]));
  }
  std::string reply;
  std::size_t i = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    (*handler)->handle(lines[i++ % lines.size()], reply);
    bytes += reply.size();
  }
  if (reply.find("\"result\":[") == std::string::npos) {
    std::fprintf(stderr, "lookup_bench: unexpected reply %s\n", reply.c_str());
    std::exit(1);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}

std::string lookup_line(const std::string& qname, std::int64_t zone_id) {
  // What pdns 4.7.3 sends (json11: keys sorted, ", " and ": " separators).
  return "{\"method\": \"lookup\", \"parameters\": {\"local\": \"127.0.0.1\", \"qname\": \"" +
         qname +
         "\", \"qtype\": \"ANY\", \"real-remote\": \"127.0.0.1/32\", \"remote\": "
         "\"127.0.0.1\", \"zone-id\": " +
         std::to_string(zone_id) + "}}";
}

// One question = the sequence of lookups pdns sends for it (docs: pdns-remotebackend.md 3.1,
// 3.2); items are questions.
void BM_HandlerQuestion(benchmark::State& state, Kind kind) {
  const Fixture& f = fixture();
  auto handler = smimea::remote::Handler::create(f.config);
  if (!handler.ok()) die(handler.status());
  const int k = static_cast<int>(kind);
  std::vector<std::vector<std::string>> questions;
  for (std::size_t n = 0; n < f.names[k].size(); ++n) {
    const std::string& owner = f.names[k][n];
    const std::string zone = owner.substr(owner.find("._smimecert.") + 12);
    const std::int64_t id = f.zone_ids[k][n];
    std::vector<std::string> q = {lookup_line(zone, id), lookup_line(owner, id),
                                  lookup_line("_smimecert." + zone, id), lookup_line(owner, id)};
    if (kind == Kind::kMiss) {
      q.push_back(lookup_line("*._smimecert." + zone, id));
      q.push_back(lookup_line("_smimecert." + zone, id));
      q.push_back(lookup_line("*." + zone, id));
    }
    questions.push_back(std::move(q));
  }
  std::string reply;
  std::size_t i = 0;
  for (auto _ : state) {
    for (const std::string& line : questions[i++ % questions.size()]) {
      (*handler)->handle(line, reply);
    }
  }
  benchmark::DoNotOptimize(reply.data());
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(BM_AnswererLookup, hit, Kind::kHit);
BENCHMARK_CAPTURE(BM_AnswererLookup, hit_full, Kind::kHitFull);
BENCHMARK_CAPTURE(BM_AnswererLookup, miss, Kind::kMiss);
BENCHMARK_CAPTURE(BM_AnswererLookup, apex, Kind::kApex);
BENCHMARK_CAPTURE(BM_AnswererLookup, ent, Kind::kEnt);
BENCHMARK_CAPTURE(BM_HandlerHandle, hit, Kind::kHit);
BENCHMARK_CAPTURE(BM_HandlerHandle, hit_full, Kind::kHitFull);
BENCHMARK_CAPTURE(BM_HandlerHandle, miss, Kind::kMiss);
BENCHMARK_CAPTURE(BM_HandlerHandle, apex, Kind::kApex);
BENCHMARK_CAPTURE(BM_HandlerHandle, ent, Kind::kEnt);
BENCHMARK_CAPTURE(BM_HandlerQuestion, hit, Kind::kHit);
BENCHMARK_CAPTURE(BM_HandlerQuestion, hit_full, Kind::kHitFull);
BENCHMARK_CAPTURE(BM_HandlerQuestion, nxdomain, Kind::kMiss);

}  // namespace

BENCHMARK_MAIN();
