#include "metrics.h"

#include <sstream>

namespace smimea::api {

void Metrics::request(const std::string& endpoint, unsigned status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
  Histogram& h = durations_[endpoint];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::render() const {
  std::ostringstream out;
  out << "# HELP smimea_api_requests_total HTTP requests answered, by endpoint and status.\n"
         "# TYPE smimea_api_requests_total counter\n";
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, n] : requests_) {
    out << "smimea_api_requests_total{endpoint=\"" << key.first << "\",code=\"" << key.second
        << "\"} " << n << '\n';
  }
  out << "# HELP smimea_api_request_duration_seconds Time from a request's headers to its "
         "response.\n# TYPE smimea_api_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : durations_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out << "smimea_api_request_duration_seconds_bucket{endpoint=\"" << endpoint << "\",le=\""
          << kBuckets[i] << "\"} " << cumulative << '\n';
    }
    out << "smimea_api_request_duration_seconds_bucket{endpoint=\"" << endpoint
        << "\",le=\"+Inf\"} " << h.count << '\n'
        << "smimea_api_request_duration_seconds_sum{endpoint=\"" << endpoint << "\"} " << h.sum
        << '\n'
        << "smimea_api_request_duration_seconds_count{endpoint=\"" << endpoint << "\"} " << h.count
        << '\n';
  }
  out << "# HELP smimea_api_certificates_published_total Certificates published or updated.\n"
         "# TYPE smimea_api_certificates_published_total counter\n"
         "smimea_api_certificates_published_total "
      << published_ << '\n'
      << "# HELP smimea_api_certificates_removed_total Certificates removed from a mailbox.\n"
         "# TYPE smimea_api_certificates_removed_total counter\n"
         "smimea_api_certificates_removed_total "
      << removed_ << '\n'
      << "# HELP smimea_api_auth_failures_total Requests refused for a missing, unknown or "
         "expired token.\n# TYPE smimea_api_auth_failures_total counter\n"
         "smimea_api_auth_failures_total "
      << auth_failures_ << '\n'
      << "# HELP smimea_api_rate_limited_total Requests refused by the per-token rate limit.\n"
         "# TYPE smimea_api_rate_limited_total counter\n"
         "smimea_api_rate_limited_total "
      << rate_limited_ << '\n'
      << "# HELP smimea_api_connections Open HTTP connections.\n"
         "# TYPE smimea_api_connections gauge\n"
         "smimea_api_connections "
      << connections_ << '\n';
  return out.str();
}

}  // namespace smimea::api
