#include "wire/websocket_client.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace harbor::wire {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equal_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string websocket_client_key(std::span<const uint8_t, 16> nonce) {
  std::array<unsigned char, 25> text{};  // 16 bytes → 24 characters and EVP's NUL
  const int n = EVP_EncodeBlock(text.data(), nonce.data(), static_cast<int>(nonce.size()));
  return std::string(reinterpret_cast<const char*>(text.data()), static_cast<size_t>(n));
}

std::string websocket_upgrade_request(std::string_view host, std::string_view path,
                                      std::string_view key) {
  std::string out;
  out.reserve(192 + host.size() + path.size());
  out += "GET ";
  out += path;
  out += " HTTP/1.1\r\nHost: ";
  out += host;
  out +=
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Key: ";
  out += key;
  out += "\r\n\r\n";
  return out;
}

void append_masked_frame(std::string& out, Opcode opcode, std::string_view payload,
                         const MaskKey& mask) {
  FrameHeader h = frame_header(opcode, payload.size());
  h.bytes[1] |= 0x80;  // MASK bit [RFC 6455 §5.2]
  const size_t start = out.size();
  out.resize(start + h.size + 4 + payload.size());
  char* p = out.data() + start;
  std::memcpy(p, h.bytes.data(), h.size);
  std::memcpy(p + h.size, mask.data(), 4);
  char* body = p + h.size + 4;
  for (size_t i = 0; i < payload.size(); ++i)
    body[i] = static_cast<char>(static_cast<uint8_t>(payload[i]) ^ mask[i & 3]);
}

UpgradeResponseReader::UpgradeResponseReader(std::string key, size_t max_head)
    : expected_accept_(websocket_accept_key(key)), max_head_(max_head) {}

UpgradeResponseReader::Result UpgradeResponseReader::feed(std::string_view bytes) {
  if (status_ != Status::Incomplete) return Result{status_, 0, reason_};
  const size_t before = head_.size();
  // Look for the empty line from three bytes back: it may straddle two calls.
  const size_t from = before >= 3 ? before - 3 : 0;
  const size_t room = before <= max_head_ ? max_head_ + 1 - before : 0;
  head_.append(bytes.substr(0, room));
  size_t end = head_.find("\r\n\r\n", from);
  if (end != std::string::npos && end + 4 > max_head_) end = std::string::npos;
  if (end == std::string::npos) {
    if (head_.size() > max_head_) {
      status_ = Status::Refused;
      reason_ = "the server's answer head is longer than " + std::to_string(max_head_) + " bytes";
      head_.clear();
    }
    return Result{status_, 0, reason_};
  }
  Result r = judge(end + 2);
  if (r.status == Status::Accepted) r.consumed = end + 4 - before;
  head_.clear();
  head_.shrink_to_fit();
  return r;
}

UpgradeResponseReader::Result UpgradeResponseReader::judge(size_t head_end) {
  std::string_view head(head_.data(), head_end);
  const size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  bool accept_ok = false;
  for (size_t pos = line_end + 2; pos < head.size();) {
    size_t eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (equal_nocase(trim(line.substr(0, colon)), "sec-websocket-accept"))
      accept_ok = trim(line.substr(colon + 1)) == expected_accept_;
  }
  status_ = Status::Refused;
  if (status_line.substr(0, 13) != "HTTP/1.1 101 " && status_line != "HTTP/1.1 101") {
    reason_ = "the server answered " + std::string(status_line.substr(0, 80));
  } else if (!accept_ok) {
    reason_ = "the server's Sec-WebSocket-Accept is missing or wrong";
  } else {
    status_ = Status::Accepted;
  }
  return Result{status_, 0, reason_};
}

FeedResult ServerFrameReader::fail(size_t consumed, std::string_view reason) {
  state_ = StreamState::Failed;
  return FeedResult{
      .state = state_, .consumed = consumed, .code = CloseCode::ProtocolError, .reason = reason};
}

// Reads header bytes from input[pos...]; true once the header is whole (opcode_ and
// payload_left_ set). Sets `error` for a frame no server may send.
bool ServerFrameReader::take_header(std::string_view input, size_t& pos, std::string_view& error) {
  while (pos < input.size()) {
    header_[header_size_++] = static_cast<uint8_t>(input[pos++]);
    if (header_size_ == 1) {
      const uint8_t b0 = header_[0];
      const uint8_t op = b0 & 0x0F;
      if ((b0 & 0x70) != 0)
        error = "reserved bits set";
      else if (op == 0x1)
        error = "a text frame (MQTT takes binary frames only)";
      else if (op != 0x0 && op != 0x2 && op != 0x8 && op != 0x9 && op != 0xA)
        error = "unknown opcode";
      else if ((op & 0x8) && !(b0 & 0x80))
        error = "fragmented control frame";
      if (!error.empty()) return false;
      opcode_ = static_cast<Opcode>(op);
      continue;
    }
    const uint8_t len7 = header_[1] & 0x7F;
    if (header_size_ == 2) {
      if (header_[1] & 0x80)
        error = "a masked frame from the server";
      else if ((static_cast<uint8_t>(opcode_) & 0x8) && len7 > kMaxControlPayload)
        error = "control frame longer than 125 bytes";
      if (!error.empty()) return false;
    }
    const size_t needed = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    if (header_size_ < needed) continue;
    uint64_t length = len7;
    if (needed > 2) {
      length = 0;
      for (size_t i = 2; i < needed; ++i) length = (length << 8) | header_[i];
    }
    payload_left_ = length;
    header_size_ = 0;
    return true;
  }
  return false;
}

FeedResult ServerFrameReader::feed(std::string_view input, std::string& payload, std::string& reply,
                                   const MaskKey& mask) {
  if (state_ != StreamState::Open) return FeedResult{.state = state_};
  size_t pos = 0;
  while (pos < input.size() || (in_payload_ && payload_left_ == 0)) {
    if (!in_payload_) {
      std::string_view error;
      if (!take_header(input, pos, error)) {
        if (!error.empty()) return fail(pos, error);
        break;
      }
      in_payload_ = true;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(payload_left_, input.size() - pos));
    const bool control = (static_cast<uint8_t>(opcode_) & 0x8) != 0;
    if (control) {
      control_.append(input.substr(pos, n));
    } else {
      payload.append(input.substr(pos, n));
    }
    pos += n;
    payload_left_ -= n;
    if (payload_left_ != 0) break;
    in_payload_ = false;
    if (opcode_ == Opcode::Ping) append_masked_frame(reply, Opcode::Pong, control_, mask);
    if (opcode_ == Opcode::Close) {
      state_ = StreamState::Closed;
      control_.clear();
      return FeedResult{.state = state_, .consumed = pos};
    }
    control_.clear();
  }
  return FeedResult{.state = StreamState::Open, .consumed = input.size()};
}

}  // namespace harbor::wire
