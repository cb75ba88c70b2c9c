// The query hot path allocates nothing once warm (STYLE.md, "Query hot path"). This binary
// replaces the global operator new/delete with counting versions, so it is its own executable.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "../store_util.h"
#include "smimea/answer.h"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<std::size_t> g_allocations{0};

void* counted_alloc(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  if (size == 0) size = 1;
  void* p = std::malloc(size);  // NOLINT(cppcoreguidelines-no-malloc): this is operator new
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* counted_alloc_aligned(std::size_t size, std::align_val_t align) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  const auto a = static_cast<std::size_t>(align);
  void* p = std::aligned_alloc(a, (size + a - 1) / a * a);  // NOLINT(cppcoreguidelines-no-malloc)
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

// NOLINTBEGIN(cppcoreguidelines-no-malloc): the replaceable global allocation functions
void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new(std::size_t size, std::align_val_t align) {
  return counted_alloc_aligned(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return counted_alloc_aligned(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
// NOLINTEND(cppcoreguidelines-no-malloc)

namespace smimea {
namespace {

// Counts records and octets; allocates nothing.
class CountingSink : public RecordSink {
 public:
  void add_text(std::string_view, QType, std::uint32_t, std::int64_t, std::string_view content,
                bool) override {
    ++records;
    bytes += content.size();
  }
  void add_smimea(std::string_view, std::int64_t, const RecordView& rr) override {
    ++records;
    bytes += rr.size;
  }
  void add_ent(std::string_view, std::int64_t) override { ++records; }
  std::size_t records = 0;
  std::size_t bytes = 0;
};

class AllocTest : public ::testing::Test {
 protected:
  AllocTest() {
    config_.database = fixture_.path();
    config_.nameservers = {"ns1.example.net.", "ns2.example.net."};
    const auto zones = fixture_.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                           {"_smimecert.example.org", ZoneMode::kAuthoritative}});
    fixture_.add(zones[0], test::new_certificate(
                               "rsa.pem", "alice@example.com",
                               {RecordParams{}, RecordParams{Usage::kDaneEe, Selector::kSpki,
                                                             MatchingType::kSha256}}));
    fixture_.add(zones[1], test::new_certificate("ec.pem", "bob@example.org"));
    StoreOptions options;
    options.read_only = true;
    auto reader = Store::open(fixture_.path(), options);
    EXPECT_TRUE(reader.ok()) << reader.status().message();
    reader_ = std::move(reader).value();
    answerer_ = std::make_unique<Answerer>(*reader_, config_);
  }

  // Allocations made by n lookups of (qname, qtype) after one warm-up call.
  std::size_t allocations(std::string_view qname, QType qtype, std::size_t expected_records,
                          int n = 1000) {
    CountingSink warm;
    EXPECT_TRUE(answerer_->lookup(qname, qtype, warm).ok());
    EXPECT_EQ(warm.records, expected_records) << qname;
    CountingSink sink;
    g_allocations = 0;
    g_counting = true;
    bool all_ok = true;
    for (int i = 0; i < n; ++i) all_ok = answerer_->lookup(qname, qtype, sink).ok() && all_ok;
    g_counting = false;
    EXPECT_TRUE(all_ok);
    EXPECT_EQ(sink.records, expected_records * static_cast<std::size_t>(n));
    return g_allocations.load();
  }

  test::StoreFixture fixture_;
  Config config_;
  std::unique_ptr<Store> reader_;
  std::unique_ptr<Answerer> answerer_;
};

// printf 'alice' | sha256sum | cut -c1-56
constexpr std::string_view kAliceOwner =
    "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db._smimecert.example.com.";
// printf 'bob' | sha256sum | cut -c1-56
constexpr std::string_view kBobOwner =
    "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd._smimecert.example.org.";

TEST_F(AllocTest, CounterWorks) {
  g_allocations = 0;
  g_counting = true;
  auto* p = new int(5);  // NOLINT(cppcoreguidelines-owning-memory): what is being counted
  g_counting = false;
  delete p;  // NOLINT(cppcoreguidelines-owning-memory)
  EXPECT_EQ(g_allocations.load(), 1u);
}

TEST_F(AllocTest, SmimeaHitAllocatesNothing) {
  EXPECT_EQ(allocations(kAliceOwner, QType::kSmimea, 2), 0u);
}

TEST_F(AllocTest, AnyHitInADelegatedZoneAllocatesNothing) {
  EXPECT_EQ(allocations(kBobOwner, QType::kAny, 1), 0u);
}

TEST_F(AllocTest, UpperCaseHitAllocatesNothing) {
  EXPECT_EQ(allocations("2BD806C97F0E00AF1A1FC3328FA763A9269723C8DB8FAC4F93AF71DB._SMIMECERT."
                        "EXAMPLE.COM",
                        QType::kSmimea, 2),
            0u);
}

TEST_F(AllocTest, MissAllocatesNothing) {
  EXPECT_EQ(allocations("c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert."
                        "example.com.",
                        QType::kSmimea, 0),
            0u);
  EXPECT_EQ(allocations("www.example.net.", QType::kAny, 0), 0u);
}

TEST_F(AllocTest, ZoneLevelNamesAllocateNothing) {
  EXPECT_EQ(allocations("example.com.", QType::kAny, 3), 0u);             // SOA + 2 NS
  EXPECT_EQ(allocations("_smimecert.example.com.", QType::kAny, 1), 0u);  // ENT
}

}  // namespace
}  // namespace smimea
