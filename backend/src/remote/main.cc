// smimea-backend: serves the SMIMEA store to PowerDNS through its remote backend
// (pipe or unix connector). See README.md "Running with PowerDNS".
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "metrics_endpoint.h"
#include "server.h"
#include "smimea/config.h"
#include "smimea/pdns_semantics.h"

int main(int argc, char** argv) {
  std::string config_path = smimea::kDefaultConfigPath;
  std::string listen_path;
  bool pipe_mode = false;
  CLI::App app{"smimea-backend: PowerDNS remote backend serving SMIMEA records (RFC 8162)",
               "smimea-backend"};
  app.set_version_flag("--version", "smimea-backend 0.1.0");
  app.add_option("-c,--config", config_path, "Configuration file")
      ->default_str(smimea::kDefaultConfigPath);
  auto* listen =
      app.add_option("--listen", listen_path, "Serve pdns's unix connector on this socket path");
  auto* pipe = app.add_flag("--pipe", pipe_mode, "Serve pdns's pipe connector on stdin/stdout");
  listen->excludes(pipe);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (listen_path.empty() && !pipe_mode) {
    std::cerr << "smimea-backend: give --listen PATH or --pipe (see --help)\n";
    return 2;
  }
  if (pipe_mode) {
    // pdns 4.7 creates its coprocess pipes without close-on-exec: each backend it starts
    // inherits the write end of the others' stdin (and pdns's own pipes). Kept open, they
    // would keep every backend of a killed pdns waiting for an EOF that never comes, with the
    // store open. Nothing but stdin, stdout and stderr is ours.
    ::close_range(3, ~0U, 0);
  }
  // Logs go to stderr: in pipe mode stdout carries only replies, and stderr is pdns's.
  auto logger = spdlog::stderr_logger_mt("smimea-backend");
  logger->set_pattern(pipe_mode ? "smimea-backend: %l: %v" : "%l: %v");
  spdlog::set_default_logger(logger);

  auto config = smimea::load_config(config_path);
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    return 2;
  }
  for (const std::string& w : smimea::PdnsCalls::access_warnings(*config)) {
    spdlog::warn("{}", w);
  }
  smimea::PdnsCalls::watch_expiry(*config,
                                  [](const std::string& message) { spdlog::error("{}", message); });
  if (pipe_mode) {
    if (!config->metrics_listen.empty()) {
      spdlog::warn(
          "metrics-listen {} is ignored with --pipe: pdns starts one process per thread, "
          "each would count only its own lookups; use --listen (the unix connector)",
          config->metrics_listen);
    }
    return smimea::remote::run_pipe(*config);
  }
  std::unique_ptr<smimea::remote::MetricsEndpoint> metrics;
  if (!config->metrics_listen.empty()) {
    // The endpoint's threads inherit this mask: the signals that stop the server are read
    // from run_unix_server's signalfd, never delivered to one of them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    auto endpoint = smimea::remote::start_metrics_endpoint(config->metrics_listen);
    if (!endpoint.ok()) {
      spdlog::error("{}", endpoint.status().message());
      return 2;
    }
    metrics = std::move(endpoint).value();
    spdlog::info("metrics on http://{}/metrics", config->metrics_listen);
  }
  return smimea::remote::run_unix_server(*config, listen_path);
}
