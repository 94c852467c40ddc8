// The logger's outputs: level filtering, the line format, size rotation and its file names,
// an unwritable file, and the drop accounting of the bounded queue. Real files in a
// temporary directory; flush_logs() makes the writer thread's work visible.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "runtime/log.hpp"

namespace harbor::runtime {
namespace {

namespace fs = std::filesystem;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("harbor-log-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    // Back to a quiet output so later tests do not write into a deleted directory.
    ASSERT_TRUE(open_log_outputs(LogOutputs{.console = false}));
    set_log_level(LogLevel::Info);
    fs::remove_all(dir_);
  }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  static std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::vector<std::string> files_in_dir() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

TEST(LogLevels, ParseNanoMqNames) {
  LogLevel l = LogLevel::Info;
  ASSERT_TRUE(parse_log_level("trace", l));
  EXPECT_EQ(l, LogLevel::Trace);
  ASSERT_TRUE(parse_log_level("debug", l));
  EXPECT_EQ(l, LogLevel::Debug);
  ASSERT_TRUE(parse_log_level("info", l));
  EXPECT_EQ(l, LogLevel::Info);
  ASSERT_TRUE(parse_log_level("warn", l));
  EXPECT_EQ(l, LogLevel::Warn);
  ASSERT_TRUE(parse_log_level("error", l));
  EXPECT_EQ(l, LogLevel::Error);
  ASSERT_TRUE(parse_log_level("fatal", l));
  EXPECT_EQ(l, LogLevel::Error);
  EXPECT_FALSE(parse_log_level("loud", l));
  EXPECT_EQ(to_string(LogLevel::Warn), "warn");
}

TEST(LogLevels, BrokerIntsMapOntoTheSameScheme) {
  // BrokerContext::log passes 0 debug, 1 info, 2 warn, 3 error.
  EXPECT_EQ(static_cast<LogLevel>(0), LogLevel::Debug);
  EXPECT_EQ(static_cast<LogLevel>(1), LogLevel::Info);
  EXPECT_EQ(static_cast<LogLevel>(2), LogLevel::Warn);
  EXPECT_EQ(static_cast<LogLevel>(3), LogLevel::Error);
}

TEST_F(LogTest, LevelFiltersLessSevereLines) {
  const std::string path = file("h.log");
  ASSERT_TRUE(open_log_outputs(LogOutputs{.console = false, .file = path}));
  set_log_level(LogLevel::Warn);
  log_trace("t1");
  log_debug("d1");
  log_info("i1");
  log_warn("w1");
  log_error("e1");
  set_log_level(LogLevel::Trace);
  EXPECT_TRUE(log_enabled(LogLevel::Trace));
  log_trace("t2");
  log_debug("d2");
  flush_logs();
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 4u);
  const std::regex format(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(\w+)\] (\w+))");
  std::vector<std::string> seen;
  for (const auto& line : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, format)) << line;
    seen.push_back(m[1].str() + ":" + m[2].str());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"warn:w1", "error:e1", "trace:t2", "debug:d2"}));
}

TEST_F(LogTest, RotatesBySizeAndKeepsCount) {
  const std::string path = file("harbormq.log");
  ASSERT_TRUE(open_log_outputs(
      LogOutputs{.console = false, .file = path, .rotate_bytes = 1024, .rotate_count = 3}));
  set_log_level(LogLevel::Debug);
  const std::string payload(90, 'x');
  for (int i = 0; i < 200; ++i) log_debug("line " + std::to_string(i) + " " + payload);
  flush_logs();
  EXPECT_EQ(files_in_dir(), (std::vector<std::string>{"harbormq.1.log", "harbormq.2.log",
                                                      "harbormq.3.log", "harbormq.log"}));
  for (const auto& name : files_in_dir()) {
    EXPECT_LE(fs::file_size(dir_ / name), 1024u) << name;
  }
  // Newest in harbormq.log, then .1, .2, .3: the last line written is in the current file.
  auto current = read_lines(path);
  ASSERT_FALSE(current.empty());
  EXPECT_NE(current.back().find("line 199 "), std::string::npos);
  auto older = read_lines(file("harbormq.1.log"));
  ASSERT_FALSE(older.empty());
  auto number = [](const std::string& line) {
    auto at = line.find("line ");
    return std::stoi(line.substr(at + 5));
  };
  EXPECT_LT(number(older.back()), number(current.front()));
}

TEST_F(LogTest, AppendsToAnExistingFile) {
  const std::string path = file("a.log");
  std::ofstream(path) << "earlier line\n";
  ASSERT_TRUE(open_log_outputs(LogOutputs{.console = false, .file = path}));
  log_warn("later line");
  flush_logs();
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "earlier line");
  EXPECT_NE(lines[1].find("[warn] later line"), std::string::npos);
}

TEST_F(LogTest, FileUnderARegularFileIsRefused) {
  std::ofstream(file("plain")) << "not a directory\n";
  const std::string path = file("plain/sub/h.log");
  auto opened = open_log_outputs(LogOutputs{.console = false, .file = path});
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().find("\"" + path + "\""), std::string::npos) << opened.error();
  EXPECT_NE(opened.error().find("Not a directory"), std::string::npos) << opened.error();
}

TEST_F(LogTest, MissingDirectoryIsCreated) {
  const std::string path = file("new/dir/h.log");
  ASSERT_TRUE(open_log_outputs(LogOutputs{.console = false, .file = path}));
  log_error("created");
  flush_logs();
  ASSERT_EQ(read_lines(path).size(), 1u);
}

TEST_F(LogTest, FullQueueDropsAndCountsInsteadOfBlocking) {
  // A tiny queue: whether the writer keeps up is up to the scheduler, but every line is
  // either written or counted as dropped, and drops are noted in the log.
  const std::string path = file("q.log");
  ASSERT_TRUE(open_log_outputs(LogOutputs{.console = false, .file = path, .queue_lines = 2}));
  set_log_level(LogLevel::Debug);
  constexpr int kLines = 20'000;
  for (int i = 0; i < kLines; ++i) log_debug("burst " + std::to_string(i));
  flush_logs(5000);
  uint64_t written = 0;
  uint64_t notes = 0;
  for (const auto& line : read_lines(path)) {
    if (line.find("] burst ") != std::string::npos) ++written;
    if (line.find("lines dropped (the log queue was full") != std::string::npos) ++notes;
  }
  EXPECT_EQ(written + log_lines_dropped(), static_cast<uint64_t>(kLines));
  if (log_lines_dropped() > 0) {
    EXPECT_GE(notes, 1u);
  }
}

}  // namespace
}  // namespace harbor::runtime
