#include "smimea/lookup_metrics.h"

#include <cstdio>
#include <mutex>
#include <set>

namespace smimea {

namespace {

// The live sets and the counts of those gone. Never destroyed: an Answerer may outlive static
// destruction (a pdns thread still running at exit).
struct Registry {
  std::mutex mutex;
  std::set<const LookupCounterSet*> sets;
  LookupCounters gone;
};

Registry& registry() {
  static Registry* r = new Registry;  // NOLINT(cppcoreguidelines-owning-memory): see above
  return *r;
}

void add(LookupCounters* to, const LookupCounters& from) {
  for (int i = 0; i < kLookupResults; ++i) to->lookups[i] += from.lookups[i];
  to->store_errors += from.store_errors;
  to->store_reads += from.store_reads;
  to->store_read_ns += from.store_read_ns;
}

}  // namespace

LookupCounterSet::LookupCounterSet() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.sets.insert(this);
}

LookupCounterSet::~LookupCounterSet() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.sets.erase(this);
  add_to(&r.gone);
}

void LookupCounterSet::add_to(LookupCounters* c) const {
  LookupCounters mine;
  for (int i = 0; i < kLookupResults; ++i) {
    mine.lookups[i] = lookups_[i].load(std::memory_order_relaxed);
  }
  mine.store_errors = store_errors_.load(std::memory_order_relaxed);
  mine.store_reads = store_reads_.load(std::memory_order_relaxed);
  mine.store_read_ns = store_read_ns_.load(std::memory_order_relaxed);
  add(c, mine);
}

LookupCounters lookup_counters() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  LookupCounters c = r.gone;
  for (const LookupCounterSet* set : r.sets) set->add_to(&c);
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
