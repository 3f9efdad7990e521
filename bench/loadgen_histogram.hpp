// Log-linear latency histogram for canopy-loadgen (the idea of HdrHistogram, in ~100 lines).
//
// Values (nanoseconds) below 2^sub_bits are counted exactly; above, each power of two is split into
// 2^sub_bits equal buckets, so any recorded value is reported within 1/2^sub_bits (0.8%) of itself
// while memory stays fixed (about 60 KB) however many values are recorded. min, max and the sum
// are kept exactly.
//
// Owned by one thread; merge() the per-thread histograms after the threads have joined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace canopy::loadgen {

class Histogram {
 public:
  Histogram();

  void record(std::uint64_t value);
  void merge(const Histogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const;

  // The smallest bucket bound b such that at least percent% of the values are <= b (capped at max()).
  // REQUIRES: 0 <= percent <= 100. Returns 0 when nothing was recorded.
  std::uint64_t percentile(double percent) const;

  // Exposed for tests: which bucket a value falls in, and the largest value that bucket holds.
  static std::size_t bucket_of(std::uint64_t value);
  static std::uint64_t bucket_high(std::size_t bucket);

 private:
  static constexpr unsigned sub_bits = 7;
  static constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;
  // Exact buckets for [0, 2^sub_bits), then sub_count buckets for each exponent sub_bits..63.
  static constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub_count;

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace canopy::loadgen
