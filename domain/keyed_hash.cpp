#include "domain/keyed_hash.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace canopy::domain {
namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct State {
  std::uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }

  void absorb(std::uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

// Little-endian, as SipHash reads its input (this code runs on little-endian x86-64 and arm64).
std::uint64_t load_le(const char* p) {
  std::uint64_t m;
  std::memcpy(&m, p, sizeof m);
  return m;
}

}  // namespace

std::uint64_t siphash24(const HashKey& key, std::string_view bytes) {
  State s{0x736f6d6570736575ULL ^ key.k0, 0x646f72616e646f6dULL ^ key.k1, 0x6c7967656e657261ULL ^ key.k0,
          0x7465646279746573ULL ^ key.k1};
  const std::size_t whole = bytes.size() & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) s.absorb(load_le(bytes.data() + i));
  std::uint64_t last = static_cast<std::uint64_t>(bytes.size()) << 56;
  for (std::size_t i = whole; i < bytes.size(); ++i) {
    last |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * (i - whole));
  }
  s.absorb(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

const HashKey& process_hash_key() {
  static const HashKey key = [] {
    // The kernel's generator (getrandom(2), which waits only until it is seeded at boot); a kernel
    // without it leaves std::random_device.
    HashKey k;
    char* out = reinterpret_cast<char*>(&k);
    std::size_t got = 0;
    while (got < sizeof k) {
      const ssize_t n = getrandom(out + got, sizeof k - got, 0);
      if (n > 0) {
        got += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        std::random_device device;
        const auto draw = [&] { return (static_cast<std::uint64_t>(device()) << 32) | device(); };
        return HashKey{draw(), draw()};
      }
    }
    return k;
  }();
  return key;
}

}  // namespace canopy::domain
