#include "metrics.h"

#include <sstream>
#include <string_view>

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

namespace {

// A label value: backslash, double quote and newline escaped (text format 0.0.4).
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string render_zone_stats(const Result<std::vector<ZoneStats>>& stats) {
  std::ostringstream out;
  out << "# HELP smimea_api_store_up Whether the store could be read for these figures.\n"
         "# TYPE smimea_api_store_up gauge\n"
         "smimea_api_store_up "
      << (stats.ok() ? 1 : 0) << '\n';
  if (!stats.ok()) return out.str();
  out << "# HELP smimea_certificates Certificates published, by zone and state (expiring: "
         "notAfter within 30 days; expired: past notAfter).\n"
         "# TYPE smimea_certificates gauge\n";
  for (const ZoneStats& z : *stats) {
    const std::string zone = label(z.zone);
    out << "smimea_certificates{zone=\"" << zone << "\",state=\"valid\"} "
        << z.certificates - z.expired - z.within_30_days << '\n'
        << "smimea_certificates{zone=\"" << zone << "\",state=\"expiring\"} " << z.within_30_days
        << '\n'
        << "smimea_certificates{zone=\"" << zone << "\",state=\"expired\"} " << z.expired << '\n';
  }
  out << "# HELP smimea_certificates_expiring Certificates not expired whose notAfter is within "
         "7 or 30 days.\n# TYPE smimea_certificates_expiring gauge\n";
  for (const ZoneStats& z : *stats) {
    const std::string zone = label(z.zone);
    out << "smimea_certificates_expiring{zone=\"" << zone << "\",within=\"7d\"} " << z.within_7_days
        << '\n'
        << "smimea_certificates_expiring{zone=\"" << zone << "\",within=\"30d\"} "
        << z.within_30_days << '\n';
  }
  out << "# HELP smimea_zone_serial The zone's SOA serial.\n# TYPE smimea_zone_serial gauge\n";
  for (const ZoneStats& z : *stats) {
    out << "smimea_zone_serial{zone=\"" << label(z.zone) << "\"} " << z.serial << '\n';
  }
  out << "# HELP smimea_zone_last_change_timestamp_seconds When the zone last changed.\n"
         "# TYPE smimea_zone_last_change_timestamp_seconds gauge\n";
  for (const ZoneStats& z : *stats) {
    out << "smimea_zone_last_change_timestamp_seconds{zone=\"" << label(z.zone) << "\"} "
        << z.updated_at << '\n';
  }
  return out.str();
}

}  // namespace smimea::api
