#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "admin.h"

namespace smimea::admin {

Result<Config> Context::load_config() const { return smimea::load_config(config_path); }

Result<std::unique_ptr<Store>> Context::open_store(const Config& config) const {
  return Store::open(config.database, store_options(config, StoreUse::kWriter));
}

std::string Context::actor() const {
  const uid_t uid = ::geteuid();
  const passwd* pw = ::getpwuid(uid);
  return "cli:" + (pw != nullptr ? std::string(pw->pw_name) : std::to_string(uid));
}

int exit_code_for(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return kExitOk;
    case Status::Code::kConfigError:
      return kExitUsage;
    case Status::Code::kStoreError:
      return kExitStore;
    case Status::Code::kNotFound:
    case Status::Code::kInvalidArgument:
    case Status::Code::kConflict:
    case Status::Code::kPermissionDenied:
      return kExitRefused;
  }
  return kExitStore;
}

int fail(const Status& status) {
  std::cerr << "smimea-ctl: " << status.message() << '\n';
  return exit_code_for(status);
}

void warn(std::string_view message) { std::cerr << "smimea-ctl: warning: " << message << '\n'; }

std::string file_type(unsigned mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

Result<std::string> read_input(const std::string& path, std::size_t max_bytes) {
  const std::string shown = path == "-" ? "stdin" : path;
  // open/read rather than stdio: an import reads one small file per certificate, and stdio
  // adds an fstat and a buffer to each.
  // O_NONBLOCK: opening a FIFO without a writer must not wait for one; anything but a regular
  // file is refused before the first read (a FIFO or a device could block or never end).
  const int fd =
      path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::invalid_argument(shown, std::strerror(errno));
  if (fd != STDIN_FILENO) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int err = errno;
      ::close(fd);
      if (S_ISDIR(st.st_mode)) return Status::invalid_argument(shown, std::strerror(EISDIR));
      return Status::invalid_argument(
          shown, st.st_mode == 0 ? std::strerror(err)
                                 : "not a regular file (" + file_type(st.st_mode) + ")");
    }
  }
  std::string data;
  char buf[65536];
  bool too_big = false;
  int read_errno = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_errno = errno;  // "Is a directory" says more than "read error"
    if (n <= 0) break;
    if (data.size() + static_cast<std::size_t>(n) > max_bytes) {
      too_big = true;
      break;
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
  if (fd != STDIN_FILENO) ::close(fd);
  if (too_big) {
    return Status::invalid_argument(shown, "input larger than " + std::to_string(max_bytes) +
                                               " bytes (max-input-bytes): refused");
  }
  if (read_errno != 0) {
    return Status::invalid_argument(shown, std::string("read error: ") + std::strerror(read_errno));
  }
  return data;
}

}  // namespace smimea::admin
