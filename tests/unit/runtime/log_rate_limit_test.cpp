// The rate limiter for repeated errors: first at once, then one line per interval with the
// count held back. Time is passed in.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/log.hpp"
#include "runtime/log_rate_limit.hpp"

namespace harbor::runtime {
namespace {

TEST(RateLimiter, FirstOccurrenceIsAdmittedAtOnce) {
  RateLimiter r(10'000);
  auto first = r.admit(5);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, 0u);
}

TEST(RateLimiter, RepeatsWithinTheIntervalAreHeldBackAndCounted) {
  RateLimiter r(1000);
  ASSERT_TRUE(r.admit(0));
  EXPECT_FALSE(r.admit(1));
  EXPECT_FALSE(r.admit(500));
  EXPECT_FALSE(r.admit(999));
  EXPECT_EQ(r.held_back(), 3u);
  auto next = r.admit(1000);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 3u);
  EXPECT_EQ(r.held_back(), 0u);
  // The interval restarts at the admitted occurrence.
  EXPECT_FALSE(r.admit(1999));
  auto third = r.admit(2000);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(*third, 1u);
}

TEST(RateLimiter, QuietPeriodAdmitsWithNothingHeldBack) {
  RateLimiter r(1000);
  ASSERT_TRUE(r.admit(0));
  auto later = r.admit(60'000);
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(*later, 0u);
}

TEST(RateLimiter, HeldBackSuffix) {
  EXPECT_EQ(with_held_back("accept: Too many open files", 0, 10'000),
            "accept: Too many open files");
  EXPECT_EQ(with_held_back("accept: Too many open files", 41, 10'200),
            "accept: Too many open files (41 more in the last 10 s)");
  EXPECT_EQ(with_held_back("x", 2, 20), "x (2 more in the last 1 s)");
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RateLimitedLog, WritesFirstThenOnePerIntervalWithTheCount) {
  auto dir = std::filesystem::temp_directory_path() /
             ("harbor-ratelog-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::string path = (dir / "r.log").string();
  ASSERT_TRUE(open_log_outputs(LogOutputs{.console = false, .file = path}));
  set_log_level(LogLevel::Info);
  RateLimitedLog limited(LogLevel::Warn, std::chrono::seconds(10));
  EXPECT_TRUE(limited.log("socket read failed", 1'000));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limited.log("socket read failed", 2'000 + i));
  EXPECT_TRUE(limited.log("socket read failed", 11'000));
  flush_logs();
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("[warn] socket read failed"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("more in the last"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("[warn] socket read failed (5 more in the last 10 s)"),
            std::string::npos)
      << lines[1];
  // A level that is off neither writes nor counts.
  set_log_level(LogLevel::Error);
  EXPECT_FALSE(limited.log("socket read failed", 30'000));
  set_log_level(LogLevel::Info);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace harbor::runtime
