// Shared plumbing of smimea-ctl's commands: the global options, loading the config and the
// store, and turning a Status into a message and an exit code (DESIGN.md: 0 ok, 1 refused,
// 2 usage or config error, 3 store error).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "smimea/config.h"
#include "smimea/provision.h"
#include "smimea/status.h"
#include "smimea/store.h"

namespace smimea::admin {

enum ExitCode : int { kExitOk = 0, kExitRefused = 1, kExitUsage = 2, kExitStore = 3 };

struct Context {
  std::string config_path = kDefaultConfigPath;
  bool json = false;
  int exit_code = kExitOk;

  Result<Config> load_config() const;
  // Opens the store named by the config for writing.
  Result<std::unique_ptr<Store>> open_store(const Config& config) const;
  // Who makes this command's changes, for the audit columns: "cli:<user name>".
  std::string actor() const;
};

int exit_code_for(const Status& status);
// Prints "smimea-ctl: <message>" on stderr and returns the exit code for status.
int fail(const Status& status);
void warn(std::string_view message);

// "a FIFO", "a directory", ... for st_mode (messages about files that are not imported).
std::string file_type(unsigned mode);
// Reads FILE, or stdin for "-", refusing more than max_bytes. FILE must be a regular file (a
// symbolic link to one is followed); a FIFO, socket or device is refused without blocking.
Result<std::string> read_input(const std::string& path, std::size_t max_bytes);

// Runs fn(provisioner) on the store named by the config, as ctx.actor(); fn makes its change
// (one transaction each) and prints what it did once it is committed. Returns the exit code.
template <class Fn>
int with_provisioner(Context& ctx, Fn fn) {
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  Provisioner provisioner(**store, *config, ctx.actor());
  const Status status = fn(provisioner);
  return status.ok() ? kExitOk : fail(status);
}

// Each registers its subcommands; the chosen one stores its exit code in ctx.exit_code.
void add_zone_commands(CLI::App& app, Context& ctx);
void add_cert_commands(CLI::App& app, Context& ctx);
void add_misc_commands(CLI::App& app, Context& ctx);
void add_lookup_commands(CLI::App& app, Context& ctx);
void add_token_commands(CLI::App& app, Context& ctx);
void add_expiry_commands(CLI::App& app, Context& ctx);
// For a usage error: 3 (UNKNOWN) after printing the monitoring line if the command is
// check-expiry, otherwise -1.
int check_expiry_usage_error(CLI::App& app, const std::string& message);

}  // namespace smimea::admin
