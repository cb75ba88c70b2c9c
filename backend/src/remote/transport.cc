#include "transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace smimea::remote {

LineReader::Event LineReader::next(std::string_view* line) {
  for (;;) {
    const std::size_t nl = buf_.find('\n', start_);
    if (nl != std::string::npos) {
      const std::size_t begin = start_;
      start_ = nl + 1;
      if (skipping_) {
        skipping_ = false;
        continue;  // the tail of an over-long line, already reported
      }
      std::size_t end = nl;
      if (end > begin && buf_[end - 1] == '\r') --end;
      *line = std::string_view(buf_).substr(begin, end - begin);
      return Event::kLine;
    }
    // No complete line buffered: compact, then read more.
    if (start_ > 0) {
      buf_.erase(0, start_);
      start_ = 0;
    }
    if (buf_.size() > max_line_) {
      buf_.clear();
      if (!skipping_) {
        skipping_ = true;
        return Event::kTooLong;
      }
    }
    char chunk[65536];
    ssize_t n;
    do {
      n = ::read(fd_, chunk, sizeof chunk);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return Event::kEof;
    if (n < 0) return Event::kError;
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

bool write_all(int fd, std::string_view data, bool is_socket) {
  while (!data.empty()) {
    const ssize_t n = is_socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                                : ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace smimea::remote
