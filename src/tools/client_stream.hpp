// The byte filters between a client tool's socket and its MQTT bytes: TLS (--cafile,
// mqtts://), WebSocket (--ws PATH, ws://), or WebSocket inside TLS (wss://). Plain TCP uses
// no ClientStream at all, so its path costs nothing more. One connection's owner thread only;
// no I/O of its own: the caller sends what lands in `wire_out` and feeds what it reads.
//
// Emits only from inside its calls: start() queues the ClientHello and/or the upgrade
// request; write() queues MQTT bytes (held until both handshakes are done, then sent in
// order); read() returns the MQTT bytes in what was read and queues replies (TLS handshake
// flights, a Pong).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "wire/tls.hpp"
#include "wire/websocket_client.hpp"

namespace harbor::tools {

struct StreamOptions {
  std::shared_ptr<const wire::TlsContext> tls;  // null: no TLS
  std::string ws_path;                          // empty: no WebSocket
  std::string ws_host;                          // the Host field: "host:port"
  bool any() const { return tls || !ws_path.empty(); }
};

class ClientStream {
 public:
  explicit ClientStream(const StreamOptions& options);

  void start(std::string& wire_out);
  // False when the TLS session refuses more (closed, failed, or too much held before the
  // handshake completed).
  bool write(std::string_view mqtt, std::string& wire_out);
  // Appends the MQTT bytes in `wire_in` to `mqtt_out`. An error ends the stream: a failed
  // handshake, a refused upgrade, a broken frame, the server's Close or close_notify.
  tl::expected<void, std::string> read(std::string_view wire_in, std::string& mqtt_out,
                                       std::string& wire_out);

 private:
  enum class WsPhase : uint8_t { None, Upgrading, Open };
  // Hands bytes for the socket to TLS, or straight to wire_out without TLS.
  bool send_raw(std::string_view bytes, std::string& wire_out);
  void frame(std::string_view mqtt, std::string& wire_out);
  tl::expected<void, std::string> read_ws(std::string_view bytes, std::string& mqtt_out,
                                          std::string& wire_out);
  wire::MaskKey next_mask();

  std::optional<wire::TlsSession> tls_;
  WsPhase ws_ = WsPhase::None;
  std::string ws_path_;
  std::string ws_host_;
  std::optional<wire::UpgradeResponseReader> upgrade_;
  wire::ServerFrameReader frames_;
  std::string held_;   // MQTT bytes written before the upgrade was answered
  std::string plain_;  // TLS plaintext of one read() (the WebSocket stream)
  std::mt19937_64 random_;
};

}  // namespace harbor::tools
