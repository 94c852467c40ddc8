// One bench client connection on a Worker's event loop. Worker thread only.
// States: Idle → Connecting (TCP) → AwaitConnack → [AwaitSuback] → Ready → Closed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mqtt/outbound_window.hpp"
#include "mqtt/protocol.hpp"
#include "runtime/event_loop.hpp"
#include "tools/client_stream.hpp"
#include "tools/sequence_tracker.hpp"

namespace harbor::tools {

class Worker;

class BenchConn : public runtime::IoHandler {
 public:
  enum class State : uint8_t { Idle, Connecting, AwaitConnack, AwaitSuback, Ready, Closing, Closed };

  BenchConn(Worker& worker, uint64_t number);
  ~BenchConn() override;

  void start_connect();
  void on_io(uint32_t events) override;
  // Publisher: sends what the rate, the count and the window allow.
  void pump(uint64_t now_ns);
  // Paced subscriber (sub --rate): reads again once the read budget has refilled.
  // Called by the worker's tick.
  void resume_reading(uint64_t now_ns);
  bool read_paused() const { return read_paused_; }
  // Sends PINGREQ when quiet; fails a connection attempt that took too long.
  void sweep(int64_t now_ms);
  // Sends DISCONNECT, flushes, half-closes and waits for the broker's EOF (Closing).
  void disconnect();
  // Closes at once (end of the grace period).
  void force_close();

  State state() const { return state_; }
  bool is_publisher_active() const;
  const SequenceTracker& tracker() const { return tracker_; }

 private:
  void on_packet(mqtt::Packet& p);
  void on_connack(const mqtt::Connack& ack);
  void on_publish(const mqtt::Publish& p);
  void on_ack(const mqtt::PubAck& a);
  bool send_publish(uint64_t now_ns);
  void on_window_output(const mqtt::WindowOutput<uint32_t>& out);
  void flush();
  // Where MQTT output is encoded: straight into out_ over plain TCP, else into mqtt_out_,
  // which pass_through() hands to the stream's filters.
  std::string& mqtt_sink() { return stream_ ? mqtt_out_ : out_; }
  void pass_through();
  // Bytes read from the socket into the decoder (through the stream with TLS/WebSocket).
  bool take_input(std::span<uint8_t> buf, size_t n);
  void update_interest();
  void fail(const std::string& why);
  void close_fd();
  void on_closing_io(uint32_t events);
  void read_input(uint32_t events);
  bool paced() const;
  void refill_read_budget(uint64_t now_ns);
  size_t paced_read_size() const;

  Worker& w_;
  uint64_t number_;
  std::string client_id_;
  State state_ = State::Idle;
  int fd_ = -1;
  uint32_t interest_ = 0;
  mqtt::ClientProtocol proto_;
  std::string out_;  // bytes for the socket
  size_t out_off_ = 0;
  std::unique_ptr<ClientStream> stream_;  // TLS / WebSocket; null over plain TCP
  std::string mqtt_out_;                  // with a stream: MQTT bytes not yet filtered
  std::string mqtt_in_;                   // with a stream: one read's MQTT bytes
  std::string raw_in_;                    // with a stream: what recv() read
  int64_t started_ms_ = 0;
  uint64_t started_ns_ = 0;
  int64_t last_send_ms_ = 0;
  int64_t last_ack_ms_ = 0;  // last acknowledgement, or when the window was last empty
  bool counted_pending_ = false;

  // publisher
  mqtt::Publish pub_;
  mqtt::PubAck ack_;
  uint32_t seq_ = 0;
  uint64_t sent_ = 0;
  // QoS 1/2 in flight (packet ids, states, the broker's Receive Maximum); the handle is the
  // message's stamp sequence. Nothing is resent: a lost connection ends the client.
  mqtt::OutboundWindow<uint32_t> window_;
  uint64_t phase_ns_ = 0;  // spreads rate-limited publishers over one interval
  bool finished_ = false;

  // subscriber
  SequenceTracker tracker_;
  // Read pacing (sub --rate): a token bucket of messages. The socket is read only while the
  // budget is positive, and only about as many bytes as the budget covers, so unread data
  // stays in the kernel and TCP backpressure reaches the broker.
  double read_budget_ = 0;      // messages that may still be read (may go slightly negative)
  uint64_t budget_at_ns_ = 0;   // when read_budget_ was last refilled
  bool read_paused_ = false;    // EPOLLIN off until resume_reading() finds budget
  uint64_t bytes_read_ = 0;     // running totals for the bytes-per-message estimate
  uint64_t publishes_read_ = 0;
};

}  // namespace harbor::tools
