#include "smimea/lookup_metrics.h"

#include <cstdio>

namespace smimea {

namespace detail {
LookupMetricsData g_lookup_metrics;  // constant-initialised: atomics of 0
}  // namespace detail

LookupCounters lookup_counters() {
  const detail::LookupMetricsData& m = detail::g_lookup_metrics;
  LookupCounters c;
  for (int i = 0; i < kLookupResults; ++i) {
    c.lookups[i] = m.lookups[i].value.load(std::memory_order_relaxed);
  }
  c.store_errors = m.store_errors.value.load(std::memory_order_relaxed);
  c.store_reads = m.store_reads.value.load(std::memory_order_relaxed);
  c.store_read_ns = m.store_read_ns.value.load(std::memory_order_relaxed);
  return c;
}

const char* lookup_result_name(LookupResult result) {
  switch (result) {
    case LookupResult::kAnswer:
      return "answer";
    case LookupResult::kNodata:
      return "nodata";
    case LookupResult::kNxdomain:
      return "nxdomain";
    case LookupResult::kNotOurs:
      return "not_ours";
  }
  return "";
}

std::string render_lookup_metrics() {
  const LookupCounters c = lookup_counters();
  std::string out =
      "# HELP smimea_lookups_total pdns backend lookups answered, by result.\n"
      "# TYPE smimea_lookups_total counter\n";
  for (int i = 0; i < kLookupResults; ++i) {
    out += "smimea_lookups_total{result=\"";
    out += lookup_result_name(static_cast<LookupResult>(i));
    out += "\"} " + std::to_string(c.lookups[i]) + "\n";
  }
  out +=
      "# HELP smimea_store_errors_total Lookups that met a store error.\n"
      "# TYPE smimea_store_errors_total counter\n"
      "smimea_store_errors_total " +
      std::to_string(c.store_errors) +
      "\n"
      "# HELP smimea_store_read_seconds Time of the owner-name reads of lookups.\n"
      "# TYPE smimea_store_read_seconds summary\n";
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(c.store_read_ns) / 1e9);
  out += "smimea_store_read_seconds_sum ";
  out += sum;
  out += "\nsmimea_store_read_seconds_count " + std::to_string(c.store_reads) + "\n";
  return out;
}

}  // namespace smimea
