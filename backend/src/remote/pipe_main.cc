#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>

#include "handler.h"
#include "server.h"
#include "transport.h"

namespace smimea::remote {

int run_pipe(const Config& config) {
  std::signal(SIGPIPE, SIG_IGN);
  auto handler = Handler::create(config);
  if (!handler.ok()) {
    spdlog::error("{}", handler.status().message());
    return 3;
  }
  switch (serve_lines(**handler, STDIN_FILENO, STDOUT_FILENO, /*out_is_socket=*/false)) {
    case ServeEnd::kEof:
      return 0;
    case ServeEnd::kReadError:
      spdlog::error("reading stdin: {}", std::strerror(errno));
      return 1;
    case ServeEnd::kWriteError:
      spdlog::error("writing stdout: {}", std::strerror(errno));
      return 1;
  }
  return 1;
}

}  // namespace smimea::remote
