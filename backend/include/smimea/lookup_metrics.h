// Counters of the query path: every Answerer::lookup of the process (all pdns threads of the
// native module, all connections of smimea-backend) counts, once, in the core. The adapters
// only publish the process's sums: the native module in pdns's own statistics
// (`pdns_control show 'smimea-*'`, pdns's /metrics, carbon), smimea-backend on its optional
// Prometheus endpoint (metrics-listen).
//
// Each Answerer counts in its own LookupCounterSet: one writer (the Answerer's thread), so a
// count is a relaxed load and store of a line that thread already owns, no locked
// read-modify-write and no cache line shared between pdns's threads. lookup_counters() sums
// the live sets and those of Answerers gone. Thread-safe; a snapshot may be a few lookups
// apart between counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace smimea {

// What a lookup answered pdns. pdns makes several lookups per DNS question (the zone apex, the
// name, its parents, wildcards), so these count backend lookups, not questions.
enum class LookupResult : std::uint8_t {
  kAnswer,    // at least one record
  kNodata,    // a name that exists (or is not read: an owner name asked for a type but SMIMEA
              // and ANY) without records of the type asked
  kNxdomain,  // a name in one of our zones that has nothing: an owner name without records, any
              // other name below a zone (_smimecert of a zone without records included)
  kNotOurs,   // no zone of ours at or above it, or a zone-level name of an overlay zone, or a
              // name asked in another zone's context
};
inline constexpr int kLookupResults = 4;

// A snapshot of the counters.
struct LookupCounters {
  std::uint64_t lookups[kLookupResults] = {};  // by LookupResult
  std::uint64_t store_errors = 0;   // lookups that met a store error (failed, or not ours)
  std::uint64_t store_reads = 0;    // owner-name reads (one indexed SELECT each)
  std::uint64_t store_read_ns = 0;  // their total time
};
// The process's counters: every set's, live or gone.
LookupCounters lookup_counters();

// "answer", "nodata", "nxdomain", "not_ours".
const char* lookup_result_name(LookupResult result);

// The counters in the Prometheus text format (0.0.4): smimea_lookups_total{result=...},
// smimea_store_errors_total, smimea_store_read_seconds (summary: _sum and _count).
std::string render_lookup_metrics();

// One writer's counters. count*() only from one thread at a time (the owner's); reads from any.
class LookupCounterSet {
 public:
  LookupCounterSet();   // joins the process's sets
  ~LookupCounterSet();  // leaves them, its counts kept in the process's totals
  LookupCounterSet(const LookupCounterSet&) = delete;
  LookupCounterSet& operator=(const LookupCounterSet&) = delete;

  void count_lookup(LookupResult result) { bump(lookups_[static_cast<int>(result)], 1); }
  void count_store_error() { bump(store_errors_, 1); }
  void count_store_read(std::uint64_t ns) {
    bump(store_reads_, 1);
    bump(store_read_ns_, ns);
  }
  // Adds this set's counts to *c.
  void add_to(LookupCounters* c) const;

 private:
  // Single writer: no locked instruction needed, only a value readers may load whole.
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> lookups_[kLookupResults] = {};
  std::atomic<std::uint64_t> store_errors_{0};
  std::atomic<std::uint64_t> store_reads_{0};
  std::atomic<std::uint64_t> store_read_ns_{0};
};

}  // namespace smimea
