#include "config/units.hpp"

#include <gtest/gtest.h>

namespace harbor::config {
namespace {

TEST(Units, Durations) {
  EXPECT_EQ(parse_duration_ms("10s", 0).value(), 10'000);
  EXPECT_EQ(parse_duration_ms("500ms", 0).value(), 500);
  EXPECT_EQ(parse_duration_ms("1m", 0).value(), 60'000);
  EXPECT_EQ(parse_duration_ms("1h", 0).value(), 3'600'000);
  EXPECT_EQ(parse_duration_ms("2d", 0).value(), 172'800'000);
  EXPECT_EQ(parse_duration_ms("10S", 0).value(), 10'000);
  EXPECT_EQ(parse_duration_ms("10 s", 0).value(), 10'000);
}

TEST(Units, BareDurationTakesTheKeysUnit) {
  EXPECT_EQ(parse_duration_ms("10", 1000).value(), 10'000);  // NanoMQ's seconds keys
  EXPECT_EQ(parse_duration_ms("5000", 1).value(), 5000);     // NanoMQ's milliseconds keys
  EXPECT_FALSE(parse_duration_ms("10", 0));
}

TEST(Units, BadDurations) {
  EXPECT_FALSE(parse_duration_ms("", 1));
  EXPECT_FALSE(parse_duration_ms("s", 1));
  EXPECT_FALSE(parse_duration_ms("10w", 1));
  EXPECT_FALSE(parse_duration_ms("-1s", 1));
  EXPECT_FALSE(parse_duration_ms("1.5s", 1));
  EXPECT_FALSE(parse_duration_ms("99999999999999999999s", 1));
  EXPECT_FALSE(parse_duration_ms("9223372036854775807d", 1));
  EXPECT_EQ(parse_duration_ms("10w", 1).error(),
            "unknown duration unit \"w\" (use ms, s, m, h or d)");
}

TEST(Units, Sizes) {
  EXPECT_EQ(parse_size_bytes("256MB").value(), 268'435'456);
  EXPECT_EQ(parse_size_bytes("1KB").value(), 1024);
  EXPECT_EQ(parse_size_bytes("10MB").value(), 10 * 1024 * 1024);
  EXPECT_EQ(parse_size_bytes("2GB").value(), int64_t{2} << 30);
  EXPECT_EQ(parse_size_bytes("10M").value(), 10 * 1024 * 1024);
  EXPECT_EQ(parse_size_bytes("1kb").value(), 1024);
  EXPECT_EQ(parse_size_bytes("100").value(), 100);
  EXPECT_EQ(parse_size_bytes("100B").value(), 100);
}

TEST(Units, BadSizes) {
  EXPECT_FALSE(parse_size_bytes("MB"));
  EXPECT_FALSE(parse_size_bytes("1TB"));
  EXPECT_FALSE(parse_size_bytes("-1KB"));
  EXPECT_FALSE(parse_size_bytes("9223372036854775807GB"));
}

TEST(Units, Integers) {
  EXPECT_EQ(parse_integer("0").value(), 0);
  EXPECT_EQ(parse_integer("9223372036854775807").value(), INT64_MAX);
  EXPECT_FALSE(parse_integer("9223372036854775808"));
  EXPECT_FALSE(parse_integer("12a"));
  EXPECT_FALSE(parse_integer(""));
}

}  // namespace
}  // namespace harbor::config
