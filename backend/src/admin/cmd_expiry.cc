// smimea-ctl check-expiry: the certificates that expire soon, or have expired, for a monitoring
// system. It follows the monitoring-plugins convention (Nagios, Icinga, Naemon, Sensu...):
// exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; a first line "SMIMEA STATE - summary |
// perfdata", then one line per certificate concerned.
#include <algorithm>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "admin.h"
#include "smimea/hex.h"
#include "smimea/owner_name.h"

namespace smimea::admin {
namespace {

enum State : int { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };
constexpr const char* kStateNames[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
constexpr std::int64_t kDay = 86400;

struct ExpiryOptions {
  int warning_days = 30;
  int critical_days = 7;
  std::string zone;
};

int unknown(const Context& ctx, const std::string& message) {
  if (ctx.json) {
    std::cout << nlohmann::json{{"state", "UNKNOWN"}, {"summary", message}}.dump() << '\n';
  } else {
    std::cout << "SMIMEA UNKNOWN - " << message << '\n';
  }
  return kUnknown;
}

std::string plural(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

int check_expiry(Context& ctx, const ExpiryOptions& o) {
  if (o.warning_days < 0 || o.critical_days < 0 || o.critical_days > o.warning_days) {
    return unknown(ctx, "--critical must be at most --warning, both at least 0 days");
  }
  auto config = ctx.load_config();
  if (!config.ok()) return unknown(ctx, config.status().message());
  std::string zone;
  if (!o.zone.empty()) {
    auto name = normalize_domain(o.zone, /*allow_underscore=*/true);
    if (!name.ok()) return unknown(ctx, name.status().message());
    zone = *name;
  }
  auto store = Store::open(config->database, store_options(*config, StoreUse::kInspector));
  if (!store.ok()) return unknown(ctx, store.status().message());
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  auto stats = (*store)->zone_stats(now);
  if (!stats.ok()) return unknown(ctx, stats.status().message());
  std::uint64_t total = 0;
  bool zone_found = zone.empty();
  for (const ZoneStats& z : *stats) {
    if (!zone.empty() && z.zone != zone) continue;
    zone_found = true;
    total += z.certificates;
  }
  if (!zone_found) return unknown(ctx, "no such zone: " + zone);
  auto concerned = (*store)->certificates_expiring_before(now + o.warning_days * kDay, zone);
  if (!concerned.ok()) return unknown(ctx, concerned.status().message());

  // An expired certificate is CRITICAL while it is served (keep); withdrawn, the mailbox has
  // no valid certificate left in DNS: a WARNING, for someone to ask for a new one.
  const bool withdraw = config->withdraw_expired;
  std::uint64_t expired = 0, critical = 0, warning = 0;
  int state = kOk;
  auto items = nlohmann::json::array();
  std::string lines;
  for (const CertInfo& c : *concerned) {
    const std::int64_t left = c.not_after - now;  // served through the notAfter second
    int s;
    std::string what;
    if (left < 0) {
      ++expired;
      s = withdraw ? kWarning : kCritical;
      what = withdraw ? "expired, withdrawn" : "expired, still published";
    } else {
      s = left < o.critical_days * kDay ? kCritical : kWarning;
      ++(s == kCritical ? critical : warning);
      what = plural(static_cast<std::uint64_t>(left / kDay), "day") + " left";
    }
    state = std::max(state, s);
    std::string sha256;
    append_hex(sha256, c.fingerprint.data(), c.fingerprint.size());
    items.push_back({{"address", c.address},
                     {"zone", c.zone},
                     {"sha256", sha256},
                     {"not_after", format_time(c.not_after)},
                     {"days_left", left / kDay},
                     {"state", kStateNames[s]},
                     {"published", left >= 0 || !withdraw}});
    lines += c.address + " " + c.zone + " notAfter " + format_time(c.not_after) + " " + what +
             " (" + kStateNames[s] + ")\n";
  }
  const std::uint64_t expiring = critical + warning;
  std::string summary;
  if (expired + expiring == 0) {
    summary = plural(total, "certificate") + ", none expiring within " +
              plural(static_cast<std::uint64_t>(o.warning_days), "day");
  } else {
    std::vector<std::string> parts;
    if (expired > 0)
      parts.push_back(std::to_string(expired) + (withdraw ? " expired (withdrawn)" : " expired"));
    if (critical > 0) {
      parts.push_back(std::to_string(critical) + " expiring within " +
                      plural(static_cast<std::uint64_t>(o.critical_days), "day"));
    }
    if (warning > 0) {
      parts.push_back(std::to_string(warning) + (critical > 0 ? " more" : "") +
                      " expiring within " +
                      plural(static_cast<std::uint64_t>(o.warning_days), "day"));
    }
    for (const std::string& part : parts) summary += (summary.empty() ? "" : ", ") + part;
    summary += " (of " + plural(total, "certificate") + ")";
  }
  if (!zone.empty()) summary += " in " + zone;
  if (ctx.json) {
    std::cout << nlohmann::json{{"state", kStateNames[state]},
                                {"summary", summary},
                                {"warning_days", o.warning_days},
                                {"critical_days", o.critical_days},
                                {"certificates", total},
                                {"expiring", expiring},
                                {"expired", expired},
                                {"concerned", items}}
                     .dump()
              << '\n';
  } else {
    std::cout << "SMIMEA " << kStateNames[state] << " - " << summary << " | expiring=" << expiring
              << ';' << o.warning_days << ';' << o.critical_days << " expired=" << expired << '\n'
              << lines;
  }
  return state;
}

}  // namespace

void add_expiry_commands(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ExpiryOptions>();
  CLI::App* cmd = app.add_subcommand(
      "check-expiry",
      "Report certificates expiring soon (monitoring plugin: 0 OK, 1 WARNING, 2 CRITICAL, "
      "3 UNKNOWN)");
  cmd->add_option("--warning", o->warning_days, "WARNING for a notAfter within DAYS")
      ->default_val(30);
  cmd->add_option("--critical", o->critical_days, "CRITICAL for a notAfter within DAYS")
      ->default_val(7);
  cmd->add_option("--zone", o->zone, "Only this zone");
  cmd->callback([&ctx, o] { ctx.exit_code = check_expiry(ctx, *o); });
}

// A usage error in check-expiry is UNKNOWN (3), as a monitoring system expects.
int check_expiry_usage_error(CLI::App& app, const std::string& message) {
  CLI::App* cmd = app.get_subcommand("check-expiry");
  if (cmd == nullptr || cmd->count() == 0) return -1;
  std::cout << "SMIMEA UNKNOWN - " << message << '\n';
  return kUnknown;
}

}  // namespace smimea::admin
