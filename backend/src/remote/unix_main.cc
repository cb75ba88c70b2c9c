#include <grp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "handler.h"
#include "server.h"
#include "transport.h"

namespace smimea::remote {
namespace {

// pdns holds one connection per distributor thread plus a few short-lived ones; this is a cap
// against runaway clients, not a tuning knob.
constexpr std::size_t kMaxConnections = 512;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool make_address(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path) return false;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

// Removes a socket file left behind by a crashed server. Refuses to touch anything that is not
// a socket, or a socket that someone still answers on.
bool clear_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT;
  if (!S_ISSOCK(st.st_mode)) {
    spdlog::error("{}: exists and is not a socket; refusing to replace it", path);
    return false;
  }
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.get() >= 0 &&
      ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    spdlog::error("{}: another server is listening on it", path);
    return false;
  }
  if (::unlink(path.c_str()) != 0) {
    spdlog::error("{}: cannot remove stale socket: {}", path, std::strerror(errno));
    return false;
  }
  spdlog::info("{}: removed stale socket", path);
  return true;
}

struct Connection {
  int fd = -1;
  std::thread thread;
  std::atomic<bool> done{false};
};

void serve_connection(const Config& config, Connection* conn) {
  auto handler = Handler::create(config);
  if (!handler.ok()) {
    // pdns reconnects on its next call, so a store that comes back is picked up then.
    spdlog::error("connection: {}", handler.status().message());
  } else {
    serve_lines(**handler, conn->fd, conn->fd, /*out_is_socket=*/true);
  }
  conn->done = true;
}

}  // namespace

int run_unix_server(const Config& config, const std::string& path) {
  sockaddr_un addr{};
  if (!make_address(path, &addr)) {
    spdlog::error("{}: not a usable socket path (empty or longer than {} bytes)", path,
                  sizeof addr.sun_path - 1);
    return 2;
  }
  // Fail early, with the store's own message, rather than on pdns's first connection.
  {
    auto probe = Handler::create(config);
    if (!probe.ok()) {
      spdlog::error("{}", probe.status().message());
      return 3;
    }
  }
  gid_t gid = static_cast<gid_t>(-1);
  if (!config.socket_group.empty()) {
    const group* gr = ::getgrnam(config.socket_group.c_str());
    if (gr == nullptr) {
      spdlog::error("socket-group {}: no such group", config.socket_group);
      return 2;
    }
    gid = gr->gr_gid;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by the connection threads
  std::signal(SIGPIPE, SIG_IGN);
  Fd sigfd(::signalfd(-1, &signals, SFD_CLOEXEC));

  if (!clear_stale_socket(path, addr)) return 1;
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  // Created with no permissions for others, then opened up to exactly socket-mode.
  const mode_t old_umask = ::umask(0077);
  const int bound = ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old_umask);
  if (listener.get() < 0 || bound != 0) {
    spdlog::error("{}: cannot bind: {}", path, std::strerror(errno));
    return 1;
  }
  if (::chmod(path.c_str(), static_cast<mode_t>(config.socket_mode)) != 0 ||
      (gid != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0)) {
    spdlog::error("{}: cannot set mode/group: {}", path, std::strerror(errno));
    ::unlink(path.c_str());
    return 1;
  }
  if (::listen(listener.get(), 64) != 0) {
    spdlog::error("{}: cannot listen: {}", path, std::strerror(errno));
    ::unlink(path.c_str());
    return 1;
  }
  spdlog::info("listening on {} (store {})", path, config.database);
  // Under systemd (Type=notify), pdns.service starts only now: pdns exits if it cannot reach
  // the socket. Without NOTIFY_SOCKET this does nothing.
  sd_notify(0, "READY=1");

  std::list<Connection> connections;
  auto reap = [&connections] {
    for (auto it = connections.begin(); it != connections.end();) {
      if (it->done) {
        it->thread.join();
        ::close(it->fd);
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
  };
  int exit_code = 0;
  for (;;) {
    pollfd fds[2] = {{listener.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
    if (::poll(fds, 2, 1000) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll: {}", std::strerror(errno));
      exit_code = 1;
      break;
    }
    reap();
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sigfd.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) continue;
      if (info.ssi_signo == SIGHUP) {
        // Often sent by habit to "reload" (logrotate, systemctl reload): exiting would leave
        // pdns without its backend, and a clean exit is not one that Restart=on-failure undoes.
        spdlog::info(
            "SIGHUP ignored: store changes are served without it; restart to re-read "
            "the configuration");
        continue;
      }
      spdlog::info("signal {}: shutting down", info.ssi_signo);
      break;
    }
    if (!(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        spdlog::warn("accept: {}", std::strerror(errno));
      }
      continue;
    }
    if (connections.size() >= kMaxConnections) {
      spdlog::warn("too many connections ({}); closing a new one", connections.size());
      ::close(fd);
      continue;
    }
    Connection& conn = connections.emplace_back();
    conn.fd = fd;
    conn.thread = std::thread(serve_connection, std::cref(config), &conn);
  }
  sd_notify(0, "STOPPING=1");
  ::unlink(path.c_str());
  for (Connection& c : connections) ::shutdown(c.fd, SHUT_RDWR);
  for (Connection& c : connections) {
    c.thread.join();
    ::close(c.fd);
  }
  return exit_code;
}

}  // namespace smimea::remote
