// smimea-api's metrics in the Prometheus text format (version 0.0.4): requests by endpoint and
// status, their durations, certificates published and removed, refusals of tokens and of the
// rate limit, open connections (Metrics, thread-safe); and the store's figures per zone
// (render_zone_stats). Written by hand: a few counters and gauges, no client library.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "smimea/store.h"

namespace smimea::api {

class Metrics {
 public:
  void request(const std::string& endpoint, unsigned status, double seconds);
  void published(std::uint64_t n) { published_ += n; }
  void removed(std::uint64_t n) { removed_ += n; }
  void auth_failure() { ++auth_failures_; }
  void rate_limited() { ++rate_limited_; }
  void connection(int delta) { connections_ += delta; }
  std::string render() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   10};
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // cumulative at render
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, Histogram> durations_;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> removed_{0};
  std::atomic<std::uint64_t> auth_failures_{0};
  std::atomic<std::uint64_t> rate_limited_{0};
  std::atomic<std::int64_t> connections_{0};
};

// Per zone, from Store::zone_stats (now: seconds since the epoch): smimea_certificates{zone,
// state="valid|expiring|expired"} (expiring: within 30 days), smimea_certificates_expiring{zone,
// within="7d|30d"}, smimea_zone_serial{zone}, smimea_zone_last_change_timestamp_seconds{zone};
// and smimea_api_store_up (0 when stats is an error, with no per-zone figures).
std::string render_zone_stats(const Result<std::vector<ZoneStats>>& stats);

}  // namespace smimea::api
