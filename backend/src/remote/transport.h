// What both transports share: reading request lines from a file descriptor with a length cap,
// and writing a whole reply. Not thread-safe: one LineReader per descriptor.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "protocol.h"

namespace smimea::remote {

class LineReader {
 public:
  enum class Event { kLine, kTooLong, kEof, kError };

  LineReader(int fd, std::size_t max_line) : fd_(fd), max_line_(max_line) {}

  // Returns the next line (without '\n') in *line, valid until the next call. A line longer
  // than max_line is skipped up to its newline and reported once as kTooLong.
  Event next(std::string_view* line);

 private:
  int fd_;
  std::size_t max_line_;
  std::string buf_;
  std::size_t start_ = 0;  // first unread byte in buf_
  bool skipping_ = false;  // inside an over-long line
};

// Writes all of data, retrying on EINTR and short writes. False on error (peer gone).
// Sockets are written with MSG_NOSIGNAL, so a vanished peer is an error, not a SIGPIPE.
bool write_all(int fd, std::string_view data, bool is_socket);

// A ReplyStream (protocol.h) writing to a descriptor with write_all(): lets the Handler send a
// long reply in pieces.
class FdReplyStream : public ReplyStream {
 public:
  FdReplyStream(int fd, bool is_socket) : fd_(fd), is_socket_(is_socket) {}
  bool send(std::string_view bytes) override { return write_all(fd_, bytes, is_socket_); }

 private:
  int fd_;
  bool is_socket_;
};

}  // namespace smimea::remote
