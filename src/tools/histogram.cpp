#include "tools/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace harbor::tools {

Histogram::Histogram() : counts_(kBucketCount, 0) {}

int Histogram::bucket_index(uint64_t value) {
  if (value > kMaxValue) value = kMaxValue;
  if (value < static_cast<uint64_t>(kSubCount)) return static_cast<int>(value);
  // shift so that the top kSubBits+1 bits remain: (value >> shift) is in [kSubCount, 2*kSubCount)
  int shift = std::bit_width(value) - (kSubBits + 1);
  uint64_t top = value >> shift;
  return (shift + 1) * kSubCount + static_cast<int>(top - kSubCount);
}

uint64_t Histogram::bucket_upper(int index) {
  if (index < kSubCount) return static_cast<uint64_t>(index);
  int shift = index / kSubCount - 1;
  uint64_t top = static_cast<uint64_t>(index % kSubCount + kSubCount);
  return ((top + 1) << shift) - 1;
}

void Histogram::record(uint64_t value) {
  ++counts_[bucket_index(value)];
  ++count_;
  if (value > kMaxValue) value = kMaxValue;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (int i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

uint64_t Histogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_upper(i), max_);
  }
  return max_;
}

}  // namespace harbor::tools
