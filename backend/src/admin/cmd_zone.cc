// smimea-ctl zone add|list|remove|set-kind|set-case
#include <iostream>
#include <nlohmann/json.hpp>

#include "admin.h"
#include "smimea/owner_name.h"
#include "smimea/provision.h"

namespace smimea::admin {
namespace {

struct ZoneOptions {
  std::string name;
  std::string mode = "authoritative";
  std::string kind = "master";
  std::string letter_case = "insensitive";  // of local-parts: insensitive or sensitive
  bool case_sensitive = false;
  bool force = false;
};

std::string_view case_name(bool case_sensitive) {
  return case_sensitive ? "case-sensitive" : "case-insensitive";
}

int zone_add(Context& ctx, const ZoneOptions& opts) {
  auto name = normalize_domain(opts.name, /*allow_underscore=*/true);
  if (!name.ok()) return fail(name.status());
  auto mode = parse_zone_mode(opts.mode);
  if (!mode)
    return fail(Status::invalid_argument(opts.mode, "mode must be authoritative or overlay"));
  auto kind = parse_zone_kind(opts.kind);
  if (!kind) return fail(Status::invalid_argument(opts.kind, "kind must be master or native"));
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  return with_provisioner(ctx, [&](Provisioner& p) -> Status {
    auto change = p.add_zone(*name, *mode, *kind, opts.case_sensitive);
    if (!change.ok()) return change.status();
    const Zone& zone = change->zone;
    const int moved = change->certificates_moved;
    if (zone.name == config->catalog) {
      warn("zone " + zone.name +
           " is the catalog zone (catalog: in the configuration): the backends serve the "
           "catalog under this name, not this zone; remove the zone or name the catalog "
           "otherwise (smimea-ctl check-config refuses this configuration)");
    }
    if (ctx.json) {
      std::cout << nlohmann::json{{"zone", zone.name},
                                  {"id", zone.id},
                                  {"mode", zone_mode_name(zone.mode)},
                                  {"kind", zone_kind_name(zone.kind)},
                                  {"serial", zone.serial},
                                  {"case_sensitive", zone.case_sensitive},
                                  {"certificates_moved", moved}}
                       .dump()
                << '\n';
      return Status();
    }
    std::cout << "added zone " << zone.name << " (" << zone_mode_name(zone.mode) << ", "
              << zone_kind_name(zone.kind) << ", " << case_name(zone.case_sensitive)
              << " local-parts, serial " << zone.serial << ")\n";
    if (moved > 0) {
      const std::string parent = zone.name.substr(kSmimecertLabel.size() + 1);
      std::cout << "moved " << moved << " certificate(s) of " << parent << " from zone " << parent
                << " into it\n";
    }
    if (change->delegated_by_parent) {
      std::cout << "note: a parent zone in the store now delegates it; run pdns_control "
                   "rediscover so that pdns answers below the cut from the new zone at once "
                   "(README, \"Delegated _smimecert zones\")\n";
    }
    return Status();
  });
}

int zone_set_kind(Context& ctx, const ZoneOptions& opts) {
  auto kind = parse_zone_kind(opts.kind);
  if (!kind) return fail(Status::invalid_argument(opts.kind, "kind must be master or native"));
  return with_provisioner(ctx, [&](Provisioner& p) -> Status {
    auto zone = p.set_zone_kind(opts.name, *kind);
    if (!zone.ok()) return zone.status();
    if (ctx.json) {
      std::cout << nlohmann::json{{"zone", zone->name}, {"kind", zone_kind_name(zone->kind)}}.dump()
                << '\n';
    } else {
      std::cout << "zone " << zone->name << " is now " << zone_kind_name(zone->kind) << '\n';
    }
    return Status();
  });
}

int zone_set_case(Context& ctx, const ZoneOptions& opts) {
  return with_provisioner(ctx, [&](Provisioner& p) -> Status {
    auto zone = p.set_zone_case(opts.name, opts.letter_case == "sensitive");
    if (!zone.ok()) return zone.status();
    if (ctx.json) {
      std::cout
          << nlohmann::json{{"zone", zone->name}, {"case_sensitive", zone->case_sensitive}}.dump()
          << '\n';
    } else {
      std::cout << "zone " << zone->name << " now has " << case_name(zone->case_sensitive)
                << " local-parts\n";
    }
    return Status();
  });
}

int zone_remove(Context& ctx, const ZoneOptions& opts) {
  return with_provisioner(ctx, [&](Provisioner& p) -> Status {
    auto change = p.remove_zone(opts.name, opts.force);
    if (!change.ok()) return change.status();
    const std::string& name = change->zone.name;
    if (ctx.json) {
      std::cout << nlohmann::json{{"zone", name},
                                  {"certificates_removed", change->certificates_removed},
                                  {"certificates_moved", change->certificates_moved}}
                       .dump()
                << '\n';
      return Status();
    }
    std::cout << "removed zone " << name << " and " << change->certificates_removed
              << " certificate(s)\n";
    if (change->certificates_moved > 0) {
      std::cout << "moved " << change->certificates_moved << " certificate(s) back into zone "
                << name.substr(kSmimecertLabel.size() + 1) << '\n';
    }
    return Status();
  });
}

int zone_list(Context& ctx) {
  std::vector<Zone> zones;
  const int code = with_provisioner(ctx, [&](Provisioner& p) -> Status {
    auto z = p.zones();
    if (!z.ok()) return z.status();
    zones = std::move(z).value();
    return Status();
  });
  if (code != kExitOk) return code;
  if (ctx.json) {
    auto out = nlohmann::json::array();
    for (const Zone& z : zones) {
      out.push_back({{"zone", z.name},
                     {"id", z.id},
                     {"mode", zone_mode_name(z.mode)},
                     {"kind", zone_kind_name(z.kind)},
                     {"serial", z.serial},
                     {"notified_serial",
                      z.notified_serial < 0 ? nlohmann::json() : nlohmann::json(z.notified_serial)},
                     {"case_sensitive", z.case_sensitive},
                     {"has_records", z.has_records}});
    }
    std::cout << out.dump() << '\n';
  } else {
    for (const Zone& z : zones) {
      std::cout << z.name << '\t' << zone_mode_name(z.mode) << '\t' << zone_kind_name(z.kind)
                << '\t' << case_name(z.case_sensitive) << "\tserial " << z.serial << '\n';
    }
  }
  return kExitOk;
}

}  // namespace

void add_zone_commands(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<ZoneOptions>();
  CLI::App* zone = app.add_subcommand("zone", "Manage the zones the records are published in");
  zone->require_subcommand(1);

  CLI::App* add = zone->add_subcommand("add",
                                       "Add a zone (example.com, or _smimecert.example.com "
                                       "when only that subzone is delegated to us)");
  add->add_option("ZONE", opts->name, "Zone name")->required();
  add->add_option("--mode", opts->mode,
                  "authoritative: serve SOA, NS and the records; overlay: only the _smimecert "
                  "names, another pdns backend owns the zone")
      ->check(CLI::IsMember({"authoritative", "overlay"}))
      ->default_str("authoritative");
  add->add_option("--kind", opts->kind,
                  "master: pdns (primary=yes) sends NOTIFY to the secondaries when the serial "
                  "moves; native: no NOTIFY")
      ->check(CLI::IsMember({"master", "native"}))
      ->default_str("master");
  add->add_flag("--case-sensitive", opts->case_sensitive,
                "Compare local-parts exactly: Alice@ and alice@ are two mailboxes, and no "
                "lower-cased owner name is published (default: one mailbox, README \"Mailbox "
                "case\")");
  add->callback([&ctx, opts] { ctx.exit_code = zone_add(ctx, *opts); });

  CLI::App* set_case = zone->add_subcommand(
      "set-case", "Make a zone without certificates compare local-parts exactly or not");
  set_case->add_option("ZONE", opts->name, "Zone name")->required();
  set_case->add_option("CASE", opts->letter_case, "sensitive or insensitive")
      ->required()
      ->check(CLI::IsMember({"sensitive", "insensitive"}));
  set_case->callback([&ctx, opts] { ctx.exit_code = zone_set_case(ctx, *opts); });

  CLI::App* set_kind =
      zone->add_subcommand("set-kind", "Make a zone master (NOTIFY on changes) or native");
  set_kind->add_option("ZONE", opts->name, "Zone name")->required();
  set_kind->add_option("KIND", opts->kind, "master or native")
      ->required()
      ->check(CLI::IsMember({"master", "native"}));
  set_kind->callback([&ctx, opts] { ctx.exit_code = zone_set_kind(ctx, *opts); });

  CLI::App* list = zone->add_subcommand("list", "List the zones");
  list->callback([&ctx] { ctx.exit_code = zone_list(ctx); });

  CLI::App* remove = zone->add_subcommand("remove", "Remove a zone");
  remove->add_option("ZONE", opts->name, "Zone name")->required();
  remove->add_flag("--force", opts->force, "Also remove the zone's certificates");
  remove->callback([&ctx, opts] { ctx.exit_code = zone_remove(ctx, *opts); });
}

}  // namespace smimea::admin
