// The TLS side of a client connection accepted on listeners.ssl (server role), or of a
// bridge's link to a remote (client role, the context's): a wire::TlsSession between the
// socket and the MQTT decoder. Owned by its Connection, called by that connection's
// owner thread only; no I/O of its own (the Connection reads and writes the socket).
//
// Input, for each take() call (bytes just read from the socket): the handshake advances, or
// records are decrypted; the plaintext returned is MQTT input for the decoder, valid until
// the next call. Handshake flights, alerts and a close_notify answering the client's are
// queued on the wire buffer before the call returns. When the call ends the stream, ended()
// is true and end_reason() says why: a failed handshake ("TLS handshake failed: ..."), a
// broken record after it ("TLS error: ..."), or the peer's close_notify.
// Output: encrypt() appends MQTT bytes as TLS records to the wire buffer; close() appends our
// close_notify once. The caller sends wire() and then consume()s. Nothing is queued outside
// these calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "wire/tls.hpp"

namespace harbor::runtime {

// What a TLS listener's acceptor hands each connection it accepts: immutable, replaced as a
// whole on reload (connections keep the one they were accepted with).
struct TlsListener {
  std::shared_ptr<const wire::TlsContext> context;
  // listeners.ssl.use_cn_as_username: the verified client certificate's CN replaces the
  // user name of the CONNECT (broker::Link::certificate_username).
  bool cn_as_username = false;
};

class TlsTransport {
 public:
  // MQTT output is encrypted in pieces of at most one record's plaintext...
  static constexpr size_t kMaxChunk = wire::TlsSession::kMaxRecordPlaintext;
  // ...and only while less than this much ciphertext waits for the socket, so the encrypted
  // copy of out_ stays this small (plus one chunk's records).
  static constexpr size_t kMaxPendingCipher = 64 * 1024;

  explicit TlsTransport(std::shared_ptr<const wire::TlsContext> context);

  // `cipher`: what was just read. Returns the decrypted MQTT bytes (empty during the
  // handshake), valid until the next call on this transport.
  std::string_view take(std::span<const uint8_t> cipher);

  // The handshake completed (application data may flow).
  bool established() const { return session_.established(); }
  // The peer's close_notify arrived, or the session failed: no more input.
  bool ended() const {
    return session_.state() == wire::TlsState::Closed || session_.state() == wire::TlsState::Failed;
  }
  const std::string& end_reason() const { return end_reason_; }
  // The handshake ran to its end once (for the pre-CONNECT close log).
  bool handshake_done() const { return handshake_done_; }

  // Appends `mqtt` as records (held by the session until the handshake completes). False
  // when it cannot be sent any more (closing, closed, failed) or the session would hold
  // more than wire::TlsSession::kMaxHeldPlaintext before the handshake completed.
  bool encrypt(std::string_view mqtt);
  // Our close_notify, once (nothing is sent before the handshake completed or after the
  // stream ended).
  void close();
  bool close_sent() const { return close_sent_; }

  std::string_view wire() const { return std::string_view(wire_).substr(wire_offset_); }
  size_t wire_pending() const { return wire_.size() - wire_offset_; }
  void consume(size_t n);
  size_t wire_capacity() const { return wire_.capacity() + plain_.capacity(); }
  // Gives back the wire and plaintext buffers' memory while they are empty (an idle
  // connection).
  size_t trim();

  std::optional<wire::TlsPeerCertificate> peer_certificate() const {
    return session_.peer_certificate();
  }
  // After the handshake: "TLSv1.3", and the cipher suite (wire::TlsSession's names).
  std::string_view protocol_version() const { return session_.protocol_version(); }
  std::string_view cipher() const { return session_.cipher(); }

 private:
  void note_state();

  wire::TlsSession session_;
  std::string wire_;  // bytes for the socket: handshake, records, alerts, close_notify
  size_t wire_offset_ = 0;
  std::string plain_;  // the last take()'s plaintext
  bool handshake_done_ = false;
  bool close_sent_ = false;
  std::string end_reason_;
};

}  // namespace harbor::runtime
