#include "runtime/websocket_transport.hpp"

#include <cstring>
#include <utility>
#include <variant>

namespace harbor::runtime {

namespace {
std::string close_code_text(wire::CloseCode code) {
  if (code == wire::CloseCode::NoStatus) return "no status";
  return std::to_string(static_cast<unsigned>(code));
}
}  // namespace

WebSocketTransport::WebSocketTransport(std::string path)
    : parser_(std::in_place, std::move(path), kMaxHead) {}

WebSocketTransport::Result WebSocketTransport::take(std::span<uint8_t> bytes) {
  Result result;
  std::span<uint8_t> frames = bytes;
  if (phase_ == Phase::Upgrading) {
    wire::UpgradeResult r = parser_->feed(bytes);
    if (std::holds_alternative<wire::UpgradeIncomplete>(r)) return result;
    if (auto* refused = std::get_if<wire::UpgradeRefused>(&r)) {
      wire_ += refused->response;
      result.refused = true;
      result.why = "WebSocket upgrade refused with " + std::to_string(refused->status) + ": " +
                   std::string(refused->reason);
      parser_.reset();
      phase_ = Phase::Ended;
      close_queued_ = true;  // no frame may follow an HTTP error response
      return result;
    }
    auto& done = std::get<wire::UpgradeDone>(r);
    wire_ += done.response;
    frames = bytes.subspan(done.consumed);
    parser_.reset();
    phase_ = Phase::Open;
  }
  if (phase_ != Phase::Open || frames.empty()) return result;

  // Payload runs are moved down to the front of `bytes`: each run starts at or after the
  // write position, and the decoder has finished with every byte before the run's end.
  uint8_t* const base = bytes.data();
  size_t write = 0;
  std::string reply;
  const wire::FeedResult fed = decoder_.feed_in_place(
      frames,
      [&](std::span<const uint8_t> run) {
        if (run.data() != base + write) std::memmove(base + write, run.data(), run.size());
        write += run.size();
      },
      reply);
  result.payload = write;
  if (!reply.empty() && !close_queued_) wire_ += reply;
  if (fed.state == wire::StreamState::Closed) {
    close_queued_ = true;
    end("WebSocket Close from the client (" + close_code_text(fed.code) + ")");
  } else if (fed.state == wire::StreamState::Failed) {
    close_queued_ = true;
    end("WebSocket protocol error: " + std::string(fed.reason) + " (Close " +
        close_code_text(fed.code) + " sent)");
  }
  return result;
}

void WebSocketTransport::end(std::string why) {
  phase_ = Phase::Ended;
  end_reason_ = std::move(why);
}

void WebSocketTransport::frame(std::string_view mqtt) {
  const wire::FrameHeader h = wire::binary_frame_header(mqtt.size());
  wire_.reserve(wire_.size() + h.size + mqtt.size());
  wire_ += h.text();
  wire_ += mqtt;
}

void WebSocketTransport::close_normally() {
  if (close_queued_ || phase_ == Phase::Upgrading) return;
  close_queued_ = true;
  wire::append_close(wire_, wire::CloseCode::Normal);
}

void WebSocketTransport::consume(size_t n) {
  wire_offset_ += n;
  if (wire_offset_ == wire_.size()) {
    wire_.clear();
    wire_offset_ = 0;
  }
}

size_t WebSocketTransport::trim() {
  if (wire_pending() != 0 || wire_.capacity() <= 15) return 0;
  const size_t released = wire_.capacity();
  std::string().swap(wire_);
  wire_offset_ = 0;
  return released;
}

}  // namespace harbor::runtime
