#include "bench/loadgen_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace canopy::loadgen {

Histogram::Histogram() : counts_(bucket_count, 0) {}

std::size_t Histogram::bucket_of(std::uint64_t value) {
  if (value < sub_count) return static_cast<std::size_t>(value);
  // exponent >= sub_bits; the top sub_bits+1 bits of value pick the bucket inside its power of two.
  const auto exponent = static_cast<unsigned>(std::bit_width(value) - 1);
  const std::uint64_t mantissa = value >> (exponent - sub_bits);  // in [sub_count, 2*sub_count)
  return static_cast<std::size_t>((exponent - sub_bits + 1) * sub_count + (mantissa - sub_count));
}

std::uint64_t Histogram::bucket_high(std::size_t bucket) {
  if (bucket < sub_count) return bucket;
  const std::uint64_t block = bucket / sub_count;  // >= 1
  const std::uint64_t mantissa = sub_count + bucket % sub_count;
  const auto shift = static_cast<unsigned>(block - 1);
  const std::uint64_t low = mantissa << shift;
  const std::uint64_t width = std::uint64_t{1} << shift;
  return low + (width - 1);  // cannot overflow: the last bucket's high is UINT64_MAX
}

void Histogram::record(std::uint64_t value) {
  ++counts_[bucket_of(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value);
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double Histogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t Histogram::percentile(double percent) const {
  assert(percent >= 0.0 && percent <= 100.0);
  if (count_ == 0) return 0;
  // Rank of the value that has percent% of the values at or below it (nearest-rank definition).
  const double exact_rank = std::ceil(percent / 100.0 * static_cast<double>(count_));
  const std::uint64_t rank = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(exact_rank), 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_high(i), max_);
  }
  return max_;
}

}  // namespace canopy::loadgen
