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
  LineReader reader(STDIN_FILENO, kMaxRequestBytes);
  FdReplyStream stream(STDOUT_FILENO, /*is_socket=*/false);
  std::string reply;
  reply.reserve(65536);
  for (;;) {
    std::string_view line;
    switch (reader.next(&line)) {
      case LineReader::Event::kLine:
        if (line.empty()) continue;
        (*handler)->handle(line, reply, &stream);
        break;
      case LineReader::Event::kTooLong:
        write_failure(reply, "request line too long");
        break;
      case LineReader::Event::kEof:
        return 0;
      case LineReader::Event::kError:
        spdlog::error("reading stdin: {}", std::strerror(errno));
        return 1;
    }
    // pdns reads the reply up to its newline: it must be there, and nothing else may be.
    if (!write_all(STDOUT_FILENO, reply, /*is_socket=*/false)) {
      spdlog::error("writing stdout: {}", std::strerror(errno));
      return 1;
    }
  }
}

}  // namespace smimea::remote
