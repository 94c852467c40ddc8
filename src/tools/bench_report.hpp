// Results of one bench run: the summary table, the live progress line and the JSON file.
// Main thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/histogram.hpp"
#include "tools/options.hpp"
#include "tools/sequence_tracker.hpp"

namespace harbor::tools {

struct BenchResult {
  std::string mode;
  int clients = 0;
  int threads = 0;
  uint64_t connected = 0;
  uint64_t connect_failed = 0;
  uint64_t connection_lost = 0;
  uint64_t ready = 0;
  uint64_t session_present = 0;
  double connect_s = 0;  // first connect attempt → last CONNACK
  Histogram connect_us;
  double run_s = 0;      // publishing / receiving window
  uint64_t sent = 0;
  uint64_t acked = 0;
  uint64_t rejected = 0;
  uint64_t abandoned = 0;
  uint64_t received = 0;
  uint64_t unstamped = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t first_receive_ns = 0;
  uint64_t last_receive_ns = 0;
  Histogram latency_ns;
  std::map<uint32_t, StreamCounts> streams;
  uint64_t error_count = 0;
  std::vector<std::string> errors;
  nlohmann::json options;
};

// Totals over every publisher stream.
StreamCounts total_streams(const BenchResult& r);

std::string format_summary(const BenchResult& r);
nlohmann::json to_json(const BenchResult& r);
nlohmann::json options_json(const BenchOptions& o);

// "1.23 ms", "456 us", "12.0 s".
std::string format_duration_ns(uint64_t ns);
// "12,345".
std::string format_count(uint64_t n);

}  // namespace harbor::tools
