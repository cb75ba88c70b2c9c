// smimea-ctl: manages the SMIMEA certificate store. See README.md "Managing certificates".
#include <CLI/CLI.hpp>
#include <iostream>

#include "admin.h"

int main(int argc, char** argv) {
  using namespace smimea::admin;
  Context ctx;
  CLI::App app{"smimea-ctl: publish S/MIME certificates as SMIMEA records (RFC 8162)",
               "smimea-ctl"};
  app.set_version_flag("--version", "smimea-ctl 0.1.0");
  app.add_option("-c,--config", ctx.config_path, "Configuration file")
      ->default_str(smimea::kDefaultConfigPath);
  app.add_flag("--json", ctx.json, "Machine-readable output (JSON on stdout)");
  app.require_subcommand(1);
  app.fallthrough();
  add_zone_commands(app, ctx);
  add_cert_commands(app, ctx);
  add_misc_commands(app, ctx);
  add_lookup_commands(app, ctx);
  add_token_commands(app, ctx);
  add_expiry_commands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (int code = check_expiry_usage_error(app, e.what()); code >= 0) return code;
    std::cerr << "smimea-ctl: " << e.what() << " (see smimea-ctl --help)\n";
    return kExitUsage;
  }
  return ctx.exit_code;
}
