// smimea-ctl token add|list|remove: the API tokens of smimea-api.
#include <iostream>
#include <nlohmann/json.hpp>

#include "admin.h"
#include "smimea/provision.h"

namespace smimea::admin {
namespace {

struct TokenOptions {
  TokenRequest request;
  int expires_days = 0;  // 0: never
};

nlohmann::json token_json(const Token& t) {
  return {{"name", t.name},
          {"zones", t.zones},
          {"addresses", t.addresses},
          {"networks", t.networks},
          {"read_only", t.read_only},
          {"admin", t.admin},
          {"expires", t.expires_at ? nlohmann::json(format_time(*t.expires_at)) : nlohmann::json()},
          {"created", format_time(t.created_at)},
          {"created_by", t.created_by}};
}

// "zones example.com, example.net; read-only; expires 2027-01-31T12:00:00Z"
std::string describe(const Token& t) {
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  };
  std::string out = t.admin ? "admin (every zone)" : "";
  if (!t.zones.empty()) out += "zones " + list(t.zones);
  if (!t.addresses.empty()) out += (out.empty() ? "" : "; ") + ("mailboxes " + list(t.addresses));
  if (!t.networks.empty()) out += "; from " + list(t.networks);
  if (t.read_only) out += "; read-only";
  out += t.expires_at ? "; expires " + format_time(*t.expires_at) : "; never expires";
  return out;
}

int token_add(Context& ctx, TokenOptions& o) {
  if (o.expires_days > 0) o.request.expires_days = o.expires_days;
  return with_provisioner(ctx, [&](Provisioner& p) -> Status {
    auto added = p.add_token(o.request);
    if (!added.ok()) return added.status();
    // The secret alone on the last line, once: scripts take it with tail -n 1.
    if (ctx.json) {
      std::cout << token_json(added->token).dump() << '\n';
    } else {
      std::cout << "added token " << added->token.name << ": " << describe(added->token)
                << "\nits secret, shown only now (the store keeps only a hash of it):\n";
    }
    std::cout << added->secret << '\n';
    return Status();
  });
}

int token_list(Context& ctx) {
  return with_provisioner(ctx, [&](Provisioner& p) -> Status {
    auto tokens = p.tokens();
    if (!tokens.ok()) return tokens.status();
    if (ctx.json) {
      auto out = nlohmann::json::array();
      for (const Token& t : *tokens) out.push_back(token_json(t));
      std::cout << out.dump() << '\n';
      return Status();
    }
    for (const Token& t : *tokens) std::cout << t.name << '\t' << describe(t) << '\n';
    return Status();
  });
}

int token_remove(Context& ctx, const TokenOptions& o) {
  return with_provisioner(ctx, [&](Provisioner& p) -> Status {
    SMIMEA_RETURN_IF_ERROR(p.remove_token(o.request.name));
    if (ctx.json) {
      std::cout << nlohmann::json{{"removed", o.request.name}}.dump() << '\n';
    } else {
      std::cout << "removed token " << o.request.name << '\n';
    }
    return Status();
  });
}

}  // namespace

void add_token_commands(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<TokenOptions>();
  CLI::App* token = app.add_subcommand("token", "Manage the API tokens of smimea-api");
  token->require_subcommand(1);

  CLI::App* add = token->add_subcommand(
      "add", "Create a token; its secret is printed once, alone on the last line");
  add->add_option("NAME", o->request.name, "Token name (letters, digits, '.', '_', '-')")
      ->required();
  add->add_option("--zone", o->request.zones, "Act in this zone (repeatable)");
  add->add_option("--address", o->request.addresses,
                  "Act only for this mailbox: a customer's own certificate (repeatable)");
  add->add_option("--network", o->request.networks,
                  "Accept the token only from this source network, e.g. 192.0.2.0/24 "
                  "(repeatable; default: any)");
  add->add_flag("--read-only", o->request.read_only, "Read, never write");
  add->add_flag("--admin", o->request.admin,
                "Act in every zone, and add or remove zones (no --zone or --address)");
  add->add_option("--expires-days", o->expires_days, "Valid for this many days (default: no end)")
      ->check(CLI::Range(1, 36500));
  add->callback([&ctx, o] { ctx.exit_code = token_add(ctx, *o); });

  CLI::App* list = token->add_subcommand("list", "List the tokens (never their secrets)");
  list->callback([&ctx] { ctx.exit_code = token_list(ctx); });

  CLI::App* remove = token->add_subcommand("remove", "Remove a token: it stops working at once");
  remove->add_option("NAME", o->request.name, "Token name")->required();
  remove->callback([&ctx, o] { ctx.exit_code = token_remove(ctx, *o); });
}

}  // namespace smimea::admin
