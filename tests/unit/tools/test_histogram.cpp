#include <gtest/gtest.h>

#include "tools/histogram.hpp"

using harbor::tools::Histogram;

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_EQ(h.percentile(0.5), 50u);
  EXPECT_EQ(h.percentile(0.99), 99u);
  EXPECT_EQ(h.percentile(1.0), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(Histogram, LargeValuesWithinRelativeError) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.record(v * 1000);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double exact = q * 100000 * 1000;
    double got = static_cast<double>(h.percentile(q));
    EXPECT_NEAR(got, exact, exact / 100) << q;
  }
  EXPECT_EQ(h.max(), 100000u * 1000);
}

TEST(Histogram, BucketUpperIsMonotonicAndCoversIndex) {
  for (int i = 1; i < Histogram::kBucketCount; ++i) {
    ASSERT_LT(Histogram::bucket_upper(i - 1), Histogram::bucket_upper(i)) << i;
    ASSERT_EQ(Histogram::bucket_index(Histogram::bucket_upper(i)), i) << i;
  }
}

TEST(Histogram, ClampsHugeValues) {
  Histogram h;
  h.record(UINT64_MAX);
  EXPECT_EQ(h.max(), Histogram::kMaxValue);
  EXPECT_EQ(h.percentile(0.5), Histogram::kMaxValue);
}

TEST(Histogram, MergeAndReset) {
  Histogram a, b;
  a.record(10);
  b.record(1000);
  b.record(5);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.min(), 5u);
  EXPECT_EQ(a.max(), 1000u);
  a.reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.percentile(0.99), 0u);
}
