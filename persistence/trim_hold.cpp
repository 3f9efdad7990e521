#include "persistence/trim_hold.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "persistence/keys.hpp"

namespace canopy::persistence {

namespace {

constexpr std::string_view hold_prefix = "trim-hold-";

std::string unique_suffix() {
  static std::atomic<std::uint64_t> next{0};
  return std::to_string(::getpid()) + "-" + std::to_string(next.fetch_add(1));
}

}  // namespace

TrimHold::TrimHold(const std::string& dir, std::uint64_t through, Status& status) {
  status = {};
  const std::string suffix = unique_suffix();
  const std::string writing = dir + "/.writing-" + std::string(hold_prefix) + suffix;
  fd_ = ::open(writing.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    if (errno == EROFS || errno == EACCES) return;
    status = Status{Status::Code::io_error, "hold the journal trim in " + dir + ": " + std::strerror(errno)};
    return;
  }
  const std::string mark = u64_key(through);
  if (::flock(fd_, LOCK_EX) != 0 || ::write(fd_, mark.data(), mark.size()) != static_cast<ssize_t>(mark.size()) ||
      ::rename(writing.c_str(), (dir + "/" + std::string(hold_prefix) + suffix).c_str()) != 0) {
    status = Status{Status::Code::io_error, "hold the journal trim in " + dir + ": " + std::strerror(errno)};
    ::unlink(writing.c_str());
    ::close(fd_);
    fd_ = -1;
    return;
  }
  path_ = dir + "/" + std::string(hold_prefix) + suffix;
}

TrimHold::~TrimHold() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);  // releases the lock
}

std::uint64_t held_trim_limit(const std::string& dir) {
  std::uint64_t limit = UINT64_MAX;
  DIR* folder = ::opendir(dir.c_str());
  if (!folder) return limit;
  while (const dirent* entry = ::readdir(folder)) {
    const std::string_view name = entry->d_name;
    if (name.substr(0, hold_prefix.size()) != hold_prefix) continue;
    const std::string path = dir + "/" + std::string(name);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // released meanwhile
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
      ::unlink(path.c_str());  // its copy died
    } else {
      char bytes[8];
      if (::pread(fd, bytes, sizeof bytes, 0) == static_cast<ssize_t>(sizeof bytes)) {
        limit = std::min(limit, get_u64_be(std::string_view(bytes, sizeof bytes)));
      } else {
        limit = 0;  // held, unreadable: hold everything
      }
    }
    ::close(fd);
  }
  ::closedir(folder);
  return limit;
}

}  // namespace canopy::persistence
