// A resolver that stalls, for the server under test (LD_PRELOAD): a fault a real resolver cannot
// produce on demand. getaddrinfo() for a host ending in ".stall.test" waits `stall_ms` and then says
// the name does not exist, as a resolver does after its timeout; every other lookup goes to libc's.
#include <dlfcn.h>
#include <netdb.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace {
constexpr const char* stalled_suffix = ".stall.test";
constexpr int stall_ms = 2000;

bool stalled(const char* node) {
  if (!node) return false;
  const std::size_t n = std::strlen(node), s = std::strlen(stalled_suffix);
  return n >= s && std::strcmp(node + n - s, stalled_suffix) == 0;
}
}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  using Real = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
  static const auto real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "getaddrinfo"));
  if (stalled(node)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms));
    return EAI_NONAME;
  }
  return real(node, service, hints, res);
}
