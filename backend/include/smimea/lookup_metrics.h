// Process-wide counters of the query path: every Answerer::lookup of the process (all pdns
// threads of the native module, all connections of smimea-backend) counts here, once, in the
// core. The adapters only publish them: the native module in pdns's own statistics
// (`pdns_control show 'smimea-*'`, pdns's /metrics, carbon), smimea-backend on its optional
// Prometheus endpoint (metrics-listen).
//
// Thread-safe. Counting is one relaxed atomic add per lookup (each counter on its own cache
// line); reading gives a snapshot that may be a few lookups apart between counters.
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
LookupCounters lookup_counters();

// "answer", "nodata", "nxdomain", "not_ours".
const char* lookup_result_name(LookupResult result);

// The counters in the Prometheus text format (0.0.4): smimea_lookups_total{result=...},
// smimea_store_errors_total, smimea_store_read_seconds (summary: _sum and _count).
std::string render_lookup_metrics();

namespace detail {

struct alignas(64) PaddedCounter {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n) { value.fetch_add(n, std::memory_order_relaxed); }
};

struct LookupMetricsData {
  PaddedCounter lookups[kLookupResults];
  PaddedCounter store_errors;
  PaddedCounter store_reads;
  PaddedCounter store_read_ns;
};

// The one instance (lookup_metrics.cc); a constant-initialised global, so counting needs no
// guard for a function-local static.
extern LookupMetricsData g_lookup_metrics;

}  // namespace detail

// For the core's query path.
inline void count_lookup(LookupResult result) {
  detail::g_lookup_metrics.lookups[static_cast<int>(result)].add(1);
}
inline void count_store_error() { detail::g_lookup_metrics.store_errors.add(1); }
inline void count_store_read(std::uint64_t ns) {
  detail::g_lookup_metrics.store_reads.add(1);
  detail::g_lookup_metrics.store_read_ns.add(ns);
}

}  // namespace smimea
