#include "metrics_endpoint.h"

#include <unistd.h>

#include "http_server.h"
#include "smimea/config.h"
#include "smimea/lookup_metrics.h"

namespace smimea::remote {
namespace {

// Everything is answered once the headers are in: no request here has a body.
class MetricsHandler : public api::Handler {
 public:
  std::optional<api::Response> begin(api::Request& request, std::size_t* max_body) override {
    *max_body = 0;
    api::Response r;
    r.content_type = "text/plain; charset=utf-8";
    if (request.path != "/metrics") {
      r.status = 404;
      r.body = "not found; the metrics are at /metrics\n";
    } else if (request.method != "GET" && request.method != "HEAD") {
      r.status = 405;
      r.body = "method not allowed\n";
      r.headers = {{"Allow", "GET, HEAD"}};
    } else {
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = render_lookup_metrics();
    }
    return r;
  }
  api::Response handle(api::Request&, bool) override {
    api::Response r;
    r.status = 404;
    return r;
  }
  void done(const api::Request&, unsigned) override {}
  void connection(int) override {}
};

class Endpoint : public MetricsEndpoint {
 public:
  MetricsHandler handler;
  std::unique_ptr<api::Server> server;
};

}  // namespace

Result<std::unique_ptr<MetricsEndpoint>> start_metrics_endpoint(const std::string& listen) {
  auto address = parse_listen_address(listen);
  if (!address.ok()) return address.status();
  auto fd = api::open_listener(*address, 0, "metrics-listen " + listen);
  if (!fd.ok()) return fd.status();
  api::ServerOptions options;
  options.threads = 1;  // a scraper every few seconds
  options.max_connections = 64;
  options.max_connections_per_address = 16;
  auto endpoint = std::make_unique<Endpoint>();
  auto server = api::Server::start(*fd, false, options, endpoint->handler);
  if (!server.ok()) {
    ::close(*fd);
    return server.status();
  }
  endpoint->server = std::move(server).value();
  return std::unique_ptr<MetricsEndpoint>(std::move(endpoint));
}

}  // namespace smimea::remote
