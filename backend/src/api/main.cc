// smimea-api: the provisioning API over HTTP, for control panels and the people who publish
// certificates (README, "The HTTP API"; smimea-api(8)).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

#include "api.h"
#include "http_server.h"
#include "metrics.h"
#include "smimea/config.h"

using smimea::ListenAddress;
using smimea::Status;

int main(int argc, char** argv) {
  std::string config_path = smimea::kDefaultConfigPath;
  std::vector<std::string> listen;
  CLI::App app{"smimea-api: the HTTP API that publishes S/MIME certificates as SMIMEA records",
               "smimea-api"};
  app.set_version_flag("--version", "smimea-api 0.1.0");
  app.add_option("-c,--config", config_path, "Configuration file")
      ->default_str(smimea::kDefaultConfigPath);
  app.add_option("--listen", listen,
                 "HOST:PORT, [IPv6]:PORT or unix:PATH (repeatable; replaces api.listen)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto logger = spdlog::stderr_logger_mt("smimea-api");
  logger->set_pattern("smimea-api: %l: %v");
  spdlog::set_default_logger(logger);

  auto config = smimea::load_config(config_path);
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    return 2;
  }
  if (!listen.empty()) {
    if (Status s = smimea::check_listen(listen, config->api.allow_plain_http); !s.ok()) {
      spdlog::error("--listen {}", s.message());
      return 2;
    }
    config->api.listen = listen;
  }
  for (const std::string& w : smimea::Store::access_warnings(config->database)) {
    spdlog::warn("{}", w);
  }
  // Signals are taken by sigwait below; blocked before any thread starts, so none gets them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  smimea::api::Metrics metrics;
  smimea::api::Api api(*config, metrics);
  if (Status s = api.check_store(); !s.ok()) {
    spdlog::error("{}", s.message());
    return 3;
  }
  smimea::api::ServerOptions options;
  options.threads = config->api.threads;
  options.max_connections = config->api.max_connections;
  options.max_connections_per_address = config->api.max_connections_per_address;
  options.idle_timeout = config->api.idle_timeout;
  std::vector<std::unique_ptr<smimea::api::Server>> servers;
  std::vector<std::string> unix_paths;
  for (const std::string& text : config->api.listen) {
    const ListenAddress address = *smimea::parse_listen_address(text);
    auto fd = smimea::api::open_listener(address, config->api.socket_mode, text);
    if (!fd.ok()) {
      spdlog::error("{}", fd.status().message());
      return 2;
    }
    if (!address.unix_path.empty()) unix_paths.push_back(address.unix_path);
    auto server = smimea::api::Server::start(*fd, !address.unix_path.empty(), options, api);
    if (!server.ok()) {
      spdlog::error("{}", server.status().message());
      return 2;
    }
    servers.push_back(std::move(server).value());
    spdlog::info("listening on {}{}", text, address.loopback() ? "" : " (plain HTTP)");
  }
  sd_notify(0, "READY=1");
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    spdlog::info("SIGHUP: configuration not reloaded; restart smimea-api to apply a new one");
  }
  sd_notify(0, "STOPPING=1");
  spdlog::info("stopping on signal {}", sig);
  servers.clear();  // waits for the requests in progress
  for (const std::string& path : unix_paths) ::unlink(path.c_str());
  return 0;
}
