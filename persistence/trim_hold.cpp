#include "persistence/trim_hold.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>

#include "config/limits.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

namespace {

constexpr std::string_view hold_prefix = "trim-hold-";

// Unique across processes and time: a pid is reused, a pid with 64 random bits is not.
std::string unique_name() {
  static std::atomic<std::uint64_t> next{0};
  std::random_device random;
  const std::uint64_t salt = (std::uint64_t{random()} << 32) | random();
  char name[96];
  std::snprintf(name, sizeof name, "%s%d-%llu-%016llx", std::string(hold_prefix).c_str(), static_cast<int>(::getpid()),
                static_cast<unsigned long long>(next.fetch_add(1)), static_cast<unsigned long long>(salt));
  return name;
}

Status failed(const std::string& dir, const char* what) {
  return Status{Status::Code::io_error, "hold the journal trim in " + dir + ": " + what + ": " + std::strerror(errno)};
}

}  // namespace

TrimHold::TrimHold(const std::string& dir, std::uint64_t through, Status& status) {
  status = {};
  const std::string path = dir + "/" + unique_name();
  // Readable by all: the server may run as another user than the copy.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    if (errno == EROFS) return;  // read-only media: no server writes there either
    status = failed(dir, "create");
    return;
  }
  const std::string mark = u64_key(through);
  if (::flock(fd_, LOCK_EX) != 0 || ::write(fd_, mark.data(), mark.size()) != static_cast<ssize_t>(mark.size())) {
    status = failed(dir, "lock and write");
    ::unlink(path.c_str());
    ::close(fd_);
    fd_ = -1;
    return;
  }
  path_ = path;
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
    if (fd < 0) {
      if (errno != ENOENT) limit = 0;  // there, but not ours to read: hold everything
      continue;                        // (ENOENT: released meanwhile)
    }
    char bytes[8];
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
      // Unlocked: a copy that died, or one that has created its hold and not locked it yet.
      struct stat st {};
      const bool young = ::fstat(fd, &st) != 0 || std::time(nullptr) - st.st_mtime < limits::trim_hold_lock_grace_seconds;
      if (young) {
        limit = 0;
      } else {
        ::unlink(path.c_str());
      }
    } else if (::pread(fd, bytes, sizeof bytes, 0) == static_cast<ssize_t>(sizeof bytes)) {
      limit = std::min(limit, get_u64_be(std::string_view(bytes, sizeof bytes)));
    } else {
      limit = 0;  // locked, its mark not written yet: hold everything
    }
    ::close(fd);
  }
  ::closedir(folder);
  return limit;
}

}  // namespace canopy::persistence
