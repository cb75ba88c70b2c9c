#include "handler.h"
#include "server.h"
#include "transport.h"

namespace smimea::remote {

ServeEnd serve_lines(Handler& handler, int in_fd, int out_fd, bool out_is_socket) {
  LineReader reader(in_fd, kMaxRequestBytes);
  FdReplyStream stream(out_fd, out_is_socket);
  std::string reply;
  reply.reserve(65536);
  for (;;) {
    std::string_view line;
    switch (reader.next(&line)) {
      case LineReader::Event::kLine:
        if (line.empty()) continue;
        handler.handle(line, reply, &stream);
        break;
      case LineReader::Event::kTooLong:
        write_failure(reply, "request line too long");
        break;
      case LineReader::Event::kEof:
        return ServeEnd::kEof;
      case LineReader::Event::kError:
        return ServeEnd::kReadError;
    }
    // pdns reads the reply up to its newline: it must be there, and nothing else may be.
    if (!write_all(out_fd, reply, out_is_socket)) return ServeEnd::kWriteError;
  }
}

}  // namespace smimea::remote
