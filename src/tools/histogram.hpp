// Log-linear latency histogram in the spirit of HdrHistogram: values below 2^kSubBits
// are exact; above, each power of two is split into 2^kSubBits linear buckets, so the
// relative error of any reported value is below 1 / 2^kSubBits (< 0.8 %).
// Fixed size (no allocation after construction); one owner thread; merge() to combine.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace harbor::tools {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int kSubCount = 1 << kSubBits;
  static constexpr int kMaxBits = 40;  // values are clamped to 2^40 - 1 (ns: ~18 minutes)
  static constexpr uint64_t kMaxValue = (uint64_t{1} << kMaxBits) - 1;
  static constexpr int kBucketCount = (kMaxBits - kSubBits + 1) * kSubCount;

  Histogram();

  void record(uint64_t value);
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
  // Smallest recorded-bucket value v such that at least `q` (0..1) of the values are <= v.
  // Reports the upper edge of the bucket, clamped to max().
  uint64_t percentile(double q) const;

  static int bucket_index(uint64_t value);
  static uint64_t bucket_upper(int index);  // largest value mapped to `index`

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

}  // namespace harbor::tools
