// The HTTP server of the code base (library smimea_http), under smimea-api and smimea-backend's
// metrics endpoint (metrics-listen): libmicrohttpd, one daemon per listening socket, each with
// a pool of threads (epoll). It takes care of HTTP itself (parsing, keep-alive, connection
// caps, idle timeouts, header size) and hands each request to a Handler twice: once its
// headers are in, to refuse it before its body is read, and once the body is complete.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "smimea/config.h"
#include "smimea/status.h"
#include "smimea/store.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace smimea::api {

struct Request {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;  // decoded; a repeated key keeps its last value
  std::string peer;                          // client address; a unix socket's client is 127.0.0.1
  std::optional<std::size_t> content_length;
  std::string content_type;   // as sent
  std::string authorization;  // as sent; never logged
  bool chunked = false;
  std::string body;
  std::chrono::steady_clock::time_point start;
  // The handler's, from begin() to done(): the route, its path parameter, the token.
  int route = -1;
  std::string endpoint = "unknown";  // the route's name, for the access log and metrics
  std::string param;                 // {name} or {sha256}
  std::optional<Token> token;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // The headers are in: a response to send at once (the body is then not read), or none to
  // read a body of at most *max_body bytes.
  virtual std::optional<Response> begin(Request& request, std::size_t* max_body) = 0;
  // The body is in (at most max_body bytes; body_too_large if the client sent more).
  virtual Response handle(Request& request, bool body_too_large) = 0;
  // The response went out (or the connection broke): access log and metrics.
  virtual void done(const Request& request, unsigned status) = 0;
  // A connection opened (+1) or closed (-1).
  virtual void connection(int delta) = 0;
};

struct ServerOptions {
  std::uint32_t threads = 4;
  std::uint32_t max_connections = 1024;
  std::uint32_t max_connections_per_address = 64;  // ignored on unix sockets
  // Seconds a connection may stay silent, and also (libmicrohttpd's timeout restarts with
  // every byte) the most a request's headers may take: a client that sends them a byte at a
  // time (slowloris) is cut then.
  std::uint32_t idle_timeout = 10;
};

// A bound, listening socket (close-on-exec) for a listen address; a unix socket gets mode
// socket_mode, and replaces a socket left at its path. text names it in errors.
Result<int> open_listener(const ListenAddress& a, std::uint32_t socket_mode,
                          const std::string& text);

// One listening socket served by libmicrohttpd until the Server is destroyed.
class Server {
 public:
  // Takes the listening socket fd (bound and listening); unix: whether it is a unix socket.
  static Result<std::unique_ptr<Server>> start(int fd, bool unix_socket,
                                               const ServerOptions& options, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  struct Impl;  // the callbacks' context and the header watchdog

 private:
  Server() = default;
  std::unique_ptr<Impl> impl_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace smimea::api
