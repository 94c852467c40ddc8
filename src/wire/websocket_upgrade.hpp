// Server side of the WebSocket opening handshake (RFC 6455 §4.2) for MQTT over WebSocket:
// an incremental, bounded parser of the client's HTTP/1.1 Upgrade request that yields the
// bytes to answer with. Pure data: no sockets, no clocks, no threads, no logging.
//
// An UpgradeParser belongs to one connection and is called by that connection's owner thread
// only; it has no internal synchronisation. Every output comes back from the feed() call
// that completes the request head; nothing is emitted later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace harbor::wire {

// Largest request head (request line, header fields and the empty line) accepted by default.
constexpr size_t kDefaultMaxRequestHead = 8 * 1024;

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2 step 5.4):
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). `key` is used as given.
std::string websocket_accept_key(std::string_view key);

// More bytes are needed: everything passed so far belongs to the request head.
struct UpgradeIncomplete {};

// The request is a valid WebSocket upgrade.
struct UpgradeDone {
  // "HTTP/1.1 101 Switching Protocols" and its fields; sent before any frame.
  std::string response;
  // Bytes of the input of the feed() call that returned this which belong to the head.
  // The bytes after them are the start of the client's frame stream (a FrameDecoder's input).
  size_t consumed = 0;
  // The Sec-WebSocket-Protocol chosen and echoed, spelled as the client spelled it; empty when
  // the client offered none (then the response names none).
  std::string subprotocol;
};

// The request is not one this server accepts: send `response`, then close the connection.
struct UpgradeRefused {
  // 400 malformed or invalid handshake, 404 another path, 405 not GET, 426 not a WebSocket
  // upgrade or another WebSocket version, 431 head over the limit, 505 not HTTP/1.1.
  int status = 400;
  // A whole HTTP response with "Connection: close" and a one-line text body.
  std::string response;
  // What was wrong, for the log (static text).
  std::string_view reason;
};

using UpgradeResult = std::variant<UpgradeIncomplete, UpgradeDone, UpgradeRefused>;

// Reads the request head from bytes split anywhere. Checks, in this order: the request line
// (GET, origin-form target, HTTP/1.1), the header field syntax, exactly one Host, the path
// (equal to the configured one; the query string is ignored), `Upgrade` listing `websocket`
// and `Connection` listing `upgrade` (tokens, case-insensitive), `Sec-WebSocket-Version: 13`,
// one `Sec-WebSocket-Key` that is the base64 of 16 bytes, and an MQTT subprotocol when the
// client offers any. Origin and Sec-WebSocket-Extensions are not consulted: no extension is
// ever negotiated, so RSV bits stay reserved in the frame stream.
class UpgradeParser {
 public:
  // `path`: the request path to accept, e.g. "/mqtt". `max_head_bytes`: a head longer than
  // this (its empty line included) is refused with 431 when byte max_head_bytes + 1 arrives.
  explicit UpgradeParser(std::string path, size_t max_head_bytes = kDefaultMaxRequestHead);

  // Takes the next bytes from the client. Returns Incomplete (all bytes kept, at most
  // max_head_bytes in all), Done or Refused. Once Done or Refused has been returned the
  // parser is finished: later calls return the same result (Done with consumed = 0) and
  // keep nothing.
  UpgradeResult feed(std::span<const uint8_t> bytes);
  UpgradeResult feed(std::string_view bytes);

  // Bytes of an incomplete head held by the parser (≤ max_head_bytes; 0 once finished).
  size_t buffered() const { return head_.size(); }
  bool finished() const { return !std::holds_alternative<UpgradeIncomplete>(result_); }

 private:
  UpgradeResult finish(UpgradeResult result);

  std::string path_;
  size_t max_head_bytes_;
  std::string head_;
  // Length of the line being read, its CR included; whether a non-empty line was seen (empty
  // lines before the request line are skipped, RFC 9112 §2.2).
  size_t line_length_ = 0;
  bool request_line_seen_ = false;
  UpgradeResult result_;
};

}  // namespace harbor::wire
