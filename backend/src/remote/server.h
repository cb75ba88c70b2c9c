// The two transport loops of smimea-backend. Each only moves lines between a descriptor and a
// Handler; everything else is the Handler's job.
#pragma once

#include <string>

#include "smimea/config.h"

namespace smimea::remote {

class Handler;

enum class ServeEnd { kEof, kReadError, kWriteError };

// The loop both transports share: reads request lines from in_fd and writes each reply (one
// line, possibly sent in pieces) to out_fd, until end of input or an I/O error (errno tells
// which). Bad requests get a false reply and the loop goes on.
ServeEnd serve_lines(Handler& handler, int in_fd, int out_fd, bool out_is_socket);

// pdns's pipe connector: requests on stdin, replies on stdout, until EOF or SIGTERM. Never
// exits on bad input (pdns does not respawn a pipe child that died while idle). Returns the
// process exit code.
int run_pipe(const Config& config);

// pdns's unix connector: listens on `path`, one thread and one Handler per connection, until
// SIGTERM/SIGINT. Removes a stale socket left by a crash, refuses to start if another server
// answers on it. Returns the process exit code.
int run_unix_server(const Config& config, const std::string& path);

}  // namespace smimea::remote
