#include "http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

namespace smimea::api {

// A connection between two requests (or before its first) must send a request's headers
// within idle_timeout; libmicrohttpd alone would wait as long as a byte comes now and then.
// The watchdog shuts such a connection's socket down (shutdown(2), not close: libmicrohttpd
// then sees the end of the stream in its own thread and closes it). A connection leaves the
// set in its CLOSED notification, which comes before libmicrohttpd closes the descriptor, under
// the same mutex: the watchdog never touches a descriptor number that was reused.
struct Server::Impl {
  struct Watch {
    int fd = -1;
    std::atomic<std::int64_t> waiting_since_ms{0};  // 0: a request's headers are in
  };

  Handler* handler = nullptr;
  std::int64_t header_timeout_ms = 0;
  std::mutex mutex;
  std::set<Watch*> watches;
  std::condition_variable wake;
  bool stopping = false;
  std::thread watchdog;

  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!wake.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping; })) {
      const std::int64_t now = now_ms();
      for (Watch* w : watches) {
        const std::int64_t since = w->waiting_since_ms.load();
        if (since == 0 || now - since <= header_timeout_ms) continue;
        // Bytes waiting in the kernel: the client sent, the worker thread is behind (a long
        // request on its other connections). Not the client's fault; look again later.
        int pending = 0;
        if (::ioctl(w->fd, FIONREAD, &pending) == 0 && pending > 0) continue;
        ::shutdown(w->fd, SHUT_RDWR);
        w->waiting_since_ms = 0;
      }
    }
  }
};

namespace {

using Watch = Server::Impl::Watch;

constexpr std::size_t kReserveBytes = 64 * 1024;

struct Connection {
  Request request;
  std::size_t max_body = 0;
  bool too_large = false;
  bool answered = false;  // a response is queued
  unsigned status = 0;
};

std::string peer_of(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "127.0.0.1";
  char text[INET6_ADDRSTRLEN] = "";
  const sockaddr* sa = info->client_addr;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
  } else {
    return "127.0.0.1";  // a unix socket: a local client
  }
  return text;
}

// With their lengths: a value with %00 in it stays whole (and is refused), not cut short into
// another filter.
MHD_Result add_query(void* cls, MHD_ValueKind, const char* key, std::size_t key_size,
                     const char* value, std::size_t value_size) {
  static_cast<Request*>(cls)->query[std::string(key, key_size)] =
      value != nullptr ? std::string(value, value_size) : std::string();
  return MHD_YES;
}

const char* header(MHD_Connection* connection, const char* name) {
  return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

MHD_Result queue(MHD_Connection* connection, Connection* c, const Response& r) {
  MHD_Response* response = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  if (!r.content_type.empty()) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
  bool csp = false;
  for (const auto& [name, value] : r.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
    csp |= name == "Content-Security-Policy";
  }
  // JSON and text are data, never a document to render or frame.
  if (!csp) {
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'none'; frame-ancestors 'none'");
  }
  const MHD_Result result = MHD_queue_response(connection, r.status, response);
  MHD_destroy_response(response);
  c->answered = true;
  c->status = r.status;
  return result;
}

MHD_Result handle_request(void* cls, MHD_Connection* connection, const char* url,
                          const char* method, const char*, const char* upload_data,
                          size_t* upload_data_size, void** state) {
  Handler& handler = *static_cast<Server::Impl*>(cls)->handler;
  auto* c = static_cast<Connection*>(*state);
  if (c == nullptr) {  // the headers are in
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info != nullptr && info->socket_context != nullptr) {
      static_cast<Watch*>(info->socket_context)->waiting_since_ms = 0;
    }
    c = new Connection;
    *state = c;
    Request& r = c->request;
    r.start = std::chrono::steady_clock::now();
    r.method = method;
    r.path = url;
    r.peer = peer_of(connection);
    MHD_get_connection_values_n(connection, MHD_GET_ARGUMENT_KIND, add_query, &r);
    if (const char* v = header(connection, MHD_HTTP_HEADER_CONTENT_TYPE)) r.content_type = v;
    if (const char* v = header(connection, MHD_HTTP_HEADER_AUTHORIZATION)) r.authorization = v;
    if (const char* v = header(connection, MHD_HTTP_HEADER_TRANSFER_ENCODING)) r.chunked = *v != 0;
    if (const char* v = header(connection, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v, &end, 10);
      if (end != v && *end == 0) r.content_length = static_cast<std::size_t>(n);
    }
    if (auto early = handler.begin(r, &c->max_body)) return queue(connection, c, *early);
    // Grown as the body arrives, not reserved on the client's word.
    if (r.content_length) {
      c->request.body.reserve(std::min({*r.content_length, c->max_body, kReserveBytes}));
    }
    return MHD_YES;
  }
  if (c->answered) {  // refused early: the rest of the body is dropped with the connection
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (!c->too_large && c->request.body.size() + *upload_data_size <= c->max_body) {
      c->request.body.append(upload_data, *upload_data_size);
    } else {
      c->too_large = true;
      c->request.body.clear();
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  return queue(connection, c, handler.handle(c->request, c->too_large));
}

// No exception may unwind through libmicrohttpd's C frames: one that escapes a request (out
// of memory) ends that request with a 500, or its connection, never the process.
MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* version, const char* upload_data, size_t* upload_data_size,
                      void** state) {
  try {
    return handle_request(cls, connection, url, method, version, upload_data, upload_data_size,
                          state);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http: error: %s %s: %s\n", method, url, e.what());
  }
  auto* c = static_cast<Connection*>(*state);
  if (c == nullptr || c->answered) return MHD_NO;
  *upload_data_size = 0;
  Response r;
  r.status = 500;
  r.body = R"({"error":"internal error"})";
  try {
    return queue(connection, c, r);
  } catch (...) {
    return MHD_NO;
  }
}

void on_completed(void* cls, MHD_Connection* connection, void** state,
                  MHD_RequestTerminationCode code) {
  // The next request's headers are awaited from now on.
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (info != nullptr && info->socket_context != nullptr) {
    static_cast<Watch*>(info->socket_context)->waiting_since_ms = Server::Impl::now_ms();
  }
  auto* c = static_cast<Connection*>(*state);
  if (c == nullptr) return;
  // A response that did not go out completely (the client left, the connection broke) is
  // logged and counted as status 0, not as what was queued.
  const bool delivered = c->answered && code == MHD_REQUEST_TERMINATED_COMPLETED_OK;
  static_cast<Server::Impl*>(cls)->handler->done(c->request, delivered ? c->status : 0);
  delete c;
  *state = nullptr;
}

void on_connection(void* cls, MHD_Connection* connection, void** socket_context,
                   MHD_ConnectionNotificationCode code) {
  auto& impl = *static_cast<Server::Impl*>(cls);
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    auto* w = new Watch;
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    w->fd = info != nullptr ? info->connect_fd : -1;
    w->waiting_since_ms = Server::Impl::now_ms();
    *socket_context = w;
    std::lock_guard<std::mutex> lock(impl.mutex);
    if (w->fd >= 0) impl.watches.insert(w);
  } else {
    auto* w = static_cast<Watch*>(*socket_context);
    {
      std::lock_guard<std::mutex> lock(impl.mutex);
      impl.watches.erase(w);
    }
    delete w;
    *socket_context = nullptr;
  }
  impl.handler->connection(code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

// Percent-decoding of the path and the query, as libmicrohttpd's own, but %00 is left as it
// is: a NUL would end the C string the path arrives in, and "/zones/example.com%00.evil"
// would name example.com. Left encoded, it is refused as not a name.
std::size_t unescape(void*, MHD_Connection*, char* s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  char* out = s;
  for (const char* in = s; *in != 0; ++in) {
    const int high = in[0] == '%' ? hex(in[1]) : -1;
    const int low = high >= 0 ? hex(in[2]) : -1;
    if (low >= 0 && (high | low) != 0) {
      *out++ = static_cast<char>(high * 16 + low);
      in += 2;
    } else {
      *out++ = *in;
    }
  }
  *out = 0;
  return static_cast<std::size_t>(out - s);
}

void log_mhd(void*, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::size_t n = std::strlen(line);
  while (n > 0 && line[n - 1] == '\n') line[--n] = 0;
  std::fprintf(stderr, "http: %s\n", line);
}

}  // namespace

// A bound, listening socket for one listen address.
Result<int> open_listener(const ListenAddress& a, std::uint32_t socket_mode,
                          const std::string& text) {
  auto fail = [&](const char* what) {
    return Status::config_error(text, std::string(what) + ": " + std::strerror(errno));
  };
  if (!a.unix_path.empty()) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (a.unix_path.size() >= sizeof sun.sun_path) {
      return Status::config_error(text, "socket path too long");
    }
    std::memcpy(sun.sun_path, a.unix_path.c_str(), a.unix_path.size() + 1);
    struct stat st {};
    // A socket left by a previous run is replaced; anything else at the path is not ours.
    if (::lstat(a.unix_path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return Status::config_error(text, "exists and is not a socket");
      ::unlink(a.unix_path.c_str());
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail("socket");
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 ||
        ::chmod(a.unix_path.c_str(), socket_mode) != 0 || ::listen(fd, 1024) != 0) {
      const Status s = fail("bind");
      ::close(fd);
      return s;
    }
    return fd;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  const bool v6 = a.host.find(':') != std::string::npos;
  if (v6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a.port);
    inet_pton(AF_INET6, a.host.c_str(), &sin6->sin6_addr);
    len = sizeof *sin6;
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    inet_pton(AF_INET, a.host.c_str(), &sin->sin_addr);
    len = sizeof *sin;
  }
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1024) != 0) {
    const Status s = fail("bind");
    ::close(fd);
    return s;
  }
  return fd;
}

Result<std::unique_ptr<Server>> Server::start(int fd, bool unix_socket,
                                              const ServerOptions& options, Handler& handler) {
  std::unique_ptr<Server> server(new Server);
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  impl.handler = &handler;
  impl.header_timeout_ms = static_cast<std::int64_t>(options.idle_timeout) * 1000;
  const unsigned per_address = unix_socket ? 0 : options.max_connections_per_address;
  server->daemon_ = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, nullptr, nullptr, &on_request, &impl,
      MHD_OPTION_EXTERNAL_LOGGER, &log_mhd, nullptr, MHD_OPTION_UNESCAPE_CALLBACK, &unescape,
      nullptr, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned>(options.threads), MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned>(options.max_connections), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      per_address, MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(options.idle_timeout),
      MHD_OPTION_NOTIFY_COMPLETED, &on_completed, &impl, MHD_OPTION_NOTIFY_CONNECTION,
      &on_connection, &impl, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return Status::config_error("smimea-api", "cannot start the HTTP server (libmicrohttpd)");
  }
  impl.watchdog = std::thread([&impl] { impl.run(); });
  return server;
}

Server::~Server() {
  if (impl_ && impl_->watchdog.joinable()) {
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      impl_->stopping = true;
    }
    impl_->wake.notify_all();
    impl_->watchdog.join();
  }
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace smimea::api
