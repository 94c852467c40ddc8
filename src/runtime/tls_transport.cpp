#include "runtime/tls_transport.hpp"

#include <utility>

namespace harbor::runtime {

TlsTransport::TlsTransport(std::shared_ptr<const wire::TlsContext> context)
    : session_(std::move(context)) {}

std::string_view TlsTransport::take(std::span<const uint8_t> cipher) {
  plain_.clear();
  session_.feed(cipher, plain_, wire_);
  note_state();
  return plain_;
}

void TlsTransport::note_state() {
  if (session_.established()) handshake_done_ = true;
  if (!end_reason_.empty()) return;
  switch (session_.state()) {
    case wire::TlsState::Failed:
      end_reason_ =
          (handshake_done_ ? "TLS error: " : "TLS handshake failed: ") + session_.failure_reason();
      break;
    case wire::TlsState::Closed:
      end_reason_ = session_.is_server() ? "TLS close_notify from the client"
                                         : "TLS close_notify from the server";
      close_sent_ = true;  // the session answered it with ours
      break;
    default:
      break;
  }
}

bool TlsTransport::encrypt(std::string_view mqtt) { return session_.write(mqtt, wire_); }

void TlsTransport::close() {
  if (close_sent_) return;
  close_sent_ = true;
  session_.close(wire_);
}

void TlsTransport::consume(size_t n) {
  wire_offset_ += n;
  if (wire_offset_ == wire_.size()) {
    wire_.clear();
    wire_offset_ = 0;
  }
}

size_t TlsTransport::trim() {
  size_t released = 0;
  if (wire_pending() == 0 && wire_.capacity() > 15) {
    released += wire_.capacity();
    std::string().swap(wire_);
    wire_offset_ = 0;
  }
  if (plain_.capacity() > 15) {
    released += plain_.capacity();
    std::string().swap(plain_);
  }
  return released;
}

}  // namespace harbor::runtime
