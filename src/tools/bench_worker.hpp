// One bench worker thread: an EventLoop driving many MQTT client connections
// (publishers, subscribers or plain connections). The worker thread owns every connection;
// the main thread steers it only through post() and reads its counters (single-writer
// atomics) and its interval latency histogram (behind a mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/event_loop.hpp"
#include "tools/histogram.hpp"
#include "tools/options.hpp"
#include "tools/sequence_tracker.hpp"

namespace harbor::tools {

class BenchConn;

// Written by the worker thread only; any thread may read.
struct WorkerCounters {
  std::atomic<uint64_t> connect_started{0};
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> connect_failed{0};
  std::atomic<uint64_t> connection_lost{0};  // after a successful CONNACK
  std::atomic<uint64_t> ready{0};            // connected and subscribed (sub) / connected
  std::atomic<uint64_t> session_present{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> acked{0};     // QoS 1 PUBACK / QoS 2 PUBCOMP (including rejections)
  std::atomic<uint64_t> rejected{0};  // acknowledgements with an error reason
  std::atomic<uint64_t> abandoned{0}; // in flight on a connection that was lost
  std::atomic<uint64_t> ack_timeouts{0};  // publishers given up for want of acknowledgements
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> finished_publishers{0};  // reached --count
  std::atomic<uint64_t> last_send_ns{0};
  std::atomic<uint64_t> first_receive_ns{0};
  std::atomic<uint64_t> last_receive_ns{0};

  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// What a worker hands back after its thread ended.
struct WorkerReport {
  Histogram latency_ns;
  Histogram connect_us;
  std::map<uint32_t, StreamCounts> streams;
  uint64_t unstamped = 0;
  std::vector<std::string> errors;  // first few distinct error messages
  uint64_t error_count = 0;
  int64_t first_connect_ms = 0;
  int64_t last_connack_ms = 0;
};

class Worker {
 public:
  Worker(const BenchOptions& options, std::vector<uint64_t> client_numbers);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // ---- main thread ----
  void start();  // spawns the thread, which starts connecting
  void join();
  void begin_publishing(uint64_t start_ns);
  void stop_publishing();
  void disconnect_all();  // DISCONNECT every client, then the thread ends
  // Moves the latency recorded since the last call into `into`.
  void take_interval_latency(Histogram& into);
  size_t client_count() const { return numbers_.size(); }
  const WorkerReport& report() const { return report_; }  // after join()

  WorkerCounters counters;

  // ---- worker thread (used by BenchConn) ----
  const BenchOptions& options() const { return options_; }
  runtime::EventLoop& loop() { return loop_; }
  bool publishing() const { return publishing_; }
  uint64_t publish_start_ns() const { return publish_start_ns_; }
  void record_latency(uint64_t ns) { interval_latency_.record(ns); }
  void record_connect(uint64_t elapsed_ns, int64_t now_ms);
  void record_error(const std::string& message);
  void note_unstamped() { ++report_.unstamped; }
  void connect_slot_freed() { want_connect_more_ = true; }
  int pending_connects = 0;

 private:
  void run();
  void connect_more();
  void tick();
  void sweep();
  void flush_latency();
  void close_check(int64_t deadline);

  BenchOptions options_;
  std::vector<uint64_t> numbers_;
  runtime::EventLoop loop_;
  std::thread thread_;
  std::vector<std::unique_ptr<BenchConn>> conns_;
  size_t next_to_connect_ = 0;
  int64_t connect_begin_ms_ = 0;
  bool want_connect_more_ = false;
  bool publishing_ = false;
  bool closing_ = false;
  uint64_t publish_start_ns_ = 0;
  Histogram interval_latency_;
  std::mutex shared_mutex_;
  Histogram shared_latency_;  // guarded by shared_mutex_
  WorkerReport report_;
};

}  // namespace harbor::tools
