// A hash of client-chosen bytes (event ids, org ids in a batch, emails, idempotency keys) that a
// client cannot aim: SipHash-2-4 under a secret key drawn at random when the process starts.
//
// The hash tables those bytes key (an org actor's ids in flight, a batch's groups) would otherwise
// use std::hash, whose function and seed are public: ids crafted offline to share a bucket or a probe
// run turn each insert into a walk over all the others, and one 10,000-event batch into 50 million
// comparisons on a shared thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace canopy::domain {

struct HashKey {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
};

// SipHash-2-4 (Aumasson and Bernstein, 2012) of `bytes` under `key`.
std::uint64_t siphash24(const HashKey& key, std::string_view bytes);

// This process's key: random, drawn on first use, never written anywhere.
const HashKey& process_hash_key();

inline std::uint64_t keyed_hash(std::string_view bytes) { return siphash24(process_hash_key(), bytes); }

// For std::unordered_map / set of strings or string views. With std::equal_to<> as the equality, a
// table of std::string is searched with a string_view, without a copy.
struct KeyedHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view bytes) const { return keyed_hash(bytes); }
};

}  // namespace canopy::domain
