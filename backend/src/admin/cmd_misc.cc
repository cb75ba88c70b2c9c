// smimea-ctl name | init | check-config | export
#include <iostream>
#include <nlohmann/json.hpp>

#include "admin.h"
#include "smimea/answer.h"
#include "smimea/hex.h"
#include "smimea/owner_name.h"

namespace smimea::admin {
namespace {

struct MiscOptions {
  std::string address;
  std::string zone;
  bool exact_only = false;
};

int name(Context& ctx, const MiscOptions& o, bool config_given) {
  auto addr = parse_address(o.address);
  if (!addr.ok()) return fail(addr.status());
  bool lowercase_variant = !o.exact_only;
  if (config_given && !o.exact_only) {
    auto config = ctx.load_config();
    if (!config.ok()) return fail(config.status());
    lowercase_variant = config->lowercase_variant;
  }
  const auto hashes = owner_hashes_for(*addr, lowercase_variant);
  if (ctx.json) {
    auto names = nlohmann::json::array();
    for (const auto& h : hashes) names.push_back(owner_name(h, addr->domain));
    std::cout << nlohmann::json{{"address", addr->to_string()}, {"owners", names}}.dump() << '\n';
  } else {
    for (const auto& h : hashes) std::cout << owner_name(h, addr->domain) << '\n';
  }
  return kExitOk;
}

int init(Context& ctx) {
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  std::vector<std::string> notes;
  auto before = Store::init(config->database, &notes);
  if (!before.ok()) return fail(before.status());
  if (ctx.json) {
    std::cout << nlohmann::json{{"database", config->database},
                                {"version_before", *before},
                                {"version", kSchemaVersion},
                                {"notes", notes}}
                     .dump()
              << '\n';
    return kExitOk;
  }
  if (*before == 0) {
    std::cout << "created store " << config->database << " (schema version " << kSchemaVersion
              << ")\n";
  } else if (*before < kSchemaVersion) {
    std::cout << "migrated store " << config->database << " from schema version " << *before
              << " to " << kSchemaVersion << '\n';
  } else {
    std::cout << "store " << config->database << " is up to date (schema version " << kSchemaVersion
              << ")\n";
  }
  for (const std::string& note : notes) std::cout << "  " << note << '\n';
  return kExitOk;
}

int check_config(Context& ctx) {
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto store = Store::open(config->database, store_options(*config, StoreUse::kInspector));
  if (!store.ok()) return fail(store.status());
  std::vector<Zone> zones;
  if (Status s = (*store)->load_zones(&zones); !s.ok()) return fail(s);
  for (const Zone& z : zones) {
    if (z.name == config->catalog) {
      return fail(Status::conflict(
          config->source + ": catalog",
          z.name + " is also a zone in the store; the catalog needs a name of its own (remove "
                   "the zone with smimea-ctl zone remove, or choose another catalog name)"));
    }
  }
  for (const std::string& w : Store::access_warnings(config->database)) warn(w);
  if (config->nameservers.size() == 1 && config->nameservers.front() == "localhost.") {
    warn("nameservers is not set: zones are served with NS localhost.");
  }
  if (ctx.json) {
    std::cout << nlohmann::json{{"config", config->source},
                                {"database", config->database},
                                {"zones", zones.size()}}
                     .dump()
              << '\n';
  } else {
    std::cout << config->source << ": ok; store " << config->database << " (" << zones.size()
              << " zones)\n";
  }
  return kExitOk;
}

// Writes zone-file lines (RFC 1035 section 5) with absolute owner names.
class ZoneFileSink : public RecordSink {
 public:
  explicit ZoneFileSink(std::ostream& out) : out_(out) {}
  void add_text(std::string_view qname, QType qtype, std::uint32_t ttl, std::int64_t,
                std::string_view content, bool /*auth*/) override {
    out_ << qname << '\t' << ttl << "\tIN\t" << qtype_name(qtype) << '\t' << content << '\n';
  }
  void add_smimea(std::string_view qname, std::int64_t, const RecordView& rr) override {
    line_.clear();
    line_.append(qname).append("\t").append(std::to_string(rr.ttl)).append("\tIN\tSMIMEA\t");
    line_.append(std::to_string(static_cast<int>(rr.params.usage))).append(" ");
    line_.append(std::to_string(static_cast<int>(rr.params.selector))).append(" ");
    line_.append(std::to_string(static_cast<int>(rr.params.matching_type))).append(" ");
    append_hex(line_, rr.data, rr.size);
    out_ << line_ << '\n';
  }
  void add_ent(std::string_view, std::int64_t) override {}

 private:
  std::ostream& out_;
  std::string line_;
};

int export_zone(Context& ctx, const MiscOptions& o) {
  auto zone_name = normalize_domain(o.zone, /*allow_underscore=*/true);
  if (!zone_name.ok()) return fail(zone_name.status());
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto store = Store::open(config->database, store_options(*config, StoreUse::kInspector));
  if (!store.ok()) return fail(store.status());
  Answerer answerer(**store, *config);
  if (Status s = answerer.refresh(); !s.ok()) return fail(s);
  const ZoneEntry* zone = answerer.find_zone(*zone_name);
  if (zone == nullptr) return fail(Status::not_found(*zone_name, "no such zone"));
  std::cout << "; zone " << zone->zone.name << " (" << zone_mode_name(zone->zone.mode)
            << ") exported by smimea-ctl\n";
  ZoneFileSink sink(std::cout);
  if (Status s = answerer.list(zone->zone.id, sink); !s.ok()) return fail(s);
  std::cout.flush();
  if (!std::cout) return fail(Status::store_error("stdout", "write error"));
  return kExitOk;
}

}  // namespace

void add_misc_commands(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<MiscOptions>();

  CLI::App* name_cmd = app.add_subcommand(
      "name", "Print the SMIMEA owner name(s) of an address (needs no config or store)");
  name_cmd->add_option("ADDRESS", o->address, "Email address")->required();
  name_cmd->add_flag("--exact-only", o->exact_only,
                     "Only the owner of the local-part as written, not the lower-cased variant");
  name_cmd->callback(
      [&ctx, &app, o] { ctx.exit_code = name(ctx, *o, app.get_option("--config")->count() > 0); });

  CLI::App* init_cmd =
      app.add_subcommand("init", "Create the store, or migrate it to this version");
  init_cmd->callback([&ctx] { ctx.exit_code = init(ctx); });

  CLI::App* check = app.add_subcommand("check-config", "Validate the config and open the store");
  check->callback([&ctx] { ctx.exit_code = check_config(ctx); });

  CLI::App* exp = app.add_subcommand("export", "Write a zone in RFC 1035 zone-file format");
  exp->add_option("ZONE", o->zone, "Zone name")->required();
  exp->callback([&ctx, o] { ctx.exit_code = export_zone(ctx, *o); });
}

}  // namespace smimea::admin
