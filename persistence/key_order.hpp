// The order of every table's keys: bytes compared as unsigned, a key before any longer key it begins
// (LMDB's default order, memcmp's, and std::string's). The keys are mostly a big-endian u64 (an org)
// and an event id (keys.hpp).
//
// compare_keys() is that order, eight bytes at a time, for LMDB to call (lmdb_store.cpp): LMDB calls
// its comparator for every node of every page it searches, and through its default (mdb_cmp_memn)
// each call went on into memcmp, a second call through the PLT and memcmp's own dispatch for ~20-30
// bytes. The order is unchanged, so the files stay readable by any program that uses LMDB's default
// (mdb_dump, mdb_stat, an older Canopy). Our own sorts keep std::string's compare: with the long
// shared prefixes of one org's ids, memcmp's 32-byte steps beat this loop where no call is saved.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace canopy::persistence {

static_assert(std::endian::native == std::endian::little, "compare_keys() byte-swaps to big-endian order");

// <0, 0 or >0 as `a` sorts before, with or after `b`.
inline int compare_keys(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  std::uint64_t x = 0;
  std::uint64_t y = 0;
  for (; i + sizeof x <= n; i += sizeof x) {
    std::memcpy(&x, a.data() + i, sizeof x);
    std::memcpy(&y, b.data() + i, sizeof y);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  }
  if (i < n) {  // the last 1-7 bytes both share, zero-padded alike
    x = 0;
    y = 0;
    std::memcpy(&x, a.data() + i, n - i);
    std::memcpy(&y, b.data() + i, n - i);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

}  // namespace canopy::persistence
