// Goal: a client cannot choose ids that pile up in one bucket or probe run of Canopy's hash tables.
// The hash is SipHash-2-4 (checked against the reference vectors) under a key drawn per process;
// ids crafted to share a bucket under std::hash, whose seed is public, spread out under it.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "actors/recent_ids.hpp"
#include "domain/keyed_hash.hpp"

using canopy::domain::HashKey;
using canopy::domain::keyed_hash;
using canopy::domain::siphash24;

namespace {

// The reference implementation's key: bytes 00 01 .. 0f, read little-endian.
constexpr HashKey reference_key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

std::string counting_bytes(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
  return s;
}

}  // namespace

TEST(KeyedHash, IsSipHash24OfTheReferenceVectors) {
  // vectors.h of the SipHash reference code: input 00 01 .. (n-1) under the key above.
  EXPECT_EQ(siphash24(reference_key, counting_bytes(0)), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(siphash24(reference_key, counting_bytes(15)), 0xa129ca6149be45e5ULL);  // the paper's example
}

TEST(KeyedHash, DependsOnTheKeyAndIsStableWithinTheProcess) {
  const std::string id = "evt_2026-11-26_000001";
  EXPECT_NE(siphash24(HashKey{1, 2}, id), siphash24(HashKey{1, 3}, id));
  EXPECT_EQ(keyed_hash(id), keyed_hash(std::string(id)));
  EXPECT_EQ(canopy::actors::RecentIds::hash(id), keyed_hash(id));
  const HashKey& key = canopy::domain::process_hash_key();
  EXPECT_FALSE(key.k0 == 0 && key.k1 == 0);
}

TEST(KeyedHash, IdsCraftedToShareABucketUnderStdHashSpreadOut) {
  // What an attacker can do offline with the public std::hash: find ids with equal low 12 bits,
  // i.e. one bucket of a 4,096-slot table.
  constexpr std::uint64_t mask = 4095;
  const std::hash<std::string_view> public_hash;
  std::vector<std::string> crafted;
  for (std::uint64_t n = 0; crafted.size() < 64; ++n) {
    std::string id = "evt_" + std::to_string(n);
    if ((public_hash(id) & mask) == 0) crafted.push_back(std::move(id));
  }
  std::set<std::uint64_t> public_buckets, keyed_buckets;
  for (const auto& id : crafted) {
    public_buckets.insert(public_hash(id) & mask);
    keyed_buckets.insert(keyed_hash(id) & mask);
  }
  EXPECT_EQ(public_buckets.size(), 1u);
  // 64 ids in 4,096 buckets at random: ~0.5 pairs share one on average; 16 lost buckets would take
  // odds far below one in 10^12.
  EXPECT_GT(keyed_buckets.size(), 48u);
}
