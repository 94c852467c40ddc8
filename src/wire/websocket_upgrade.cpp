// The opening handshake: HTTP/1.1 request head syntax (RFC 9112 §2-5, read strictly enough
// to refuse what is ambiguous, leniently where RFC 9112 allows: bare LF line ends, empty
// lines before the request line) and the WebSocket rules of RFC 6455 §4.2.1.
#include "wire/websocket_upgrade.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>
#include <utility>

namespace harbor::wire {
namespace {

constexpr std::string_view kHandshakeGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_ows(char c) { return c == ' ' || c == '\t'; }

char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// tchar of RFC 9110 §5.6.2: the characters of a field name, a method, a list token.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// A control character, which a field value must not contain (HTAB aside, RFC 9110 §5.5).
bool is_ctl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls `f` with each non-empty element of a comma-separated list (RFC 9110 §5.6.1).
template <class F>
void for_each_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool list_has_token(std::string_view list, std::string_view token) {
  bool found = false;
  for_each_element(list, [&](std::string_view e) { found = found || iequals(e, token); });
  return found;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Sec-WebSocket-Key "when decoded, is 16 bytes in length" (RFC 6455 §4.1): 22 base64
// characters and "==". The 4 padding bits of the last character are not required to be zero:
// a decoder ignores them, so the key still decodes to 16 bytes.
bool is_key_of_16_bytes(std::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

std::string_view status_text(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

// `fields`: extra header fields, each ending in CRLF.
UpgradeRefused refuse(int status, std::string_view reason, std::string_view fields = {},
                      std::string_view connection = "close") {
  UpgradeRefused r;
  r.status = status;
  r.reason = reason;
  const std::string body = std::string(reason) + "\n";
  r.response.reserve(160 + fields.size() + body.size());
  r.response += "HTTP/1.1 ";
  r.response += std::to_string(status);
  r.response += ' ';
  r.response += status_text(status);
  r.response += "\r\nConnection: ";
  r.response += connection;
  r.response += "\r\n";
  r.response += fields;
  r.response += "Content-Type: text/plain\r\nContent-Length: ";
  r.response += std::to_string(body.size());
  r.response += "\r\n\r\n";
  r.response += body;
  return r;
}

// 426 names what the server would upgrade to (RFC 9110 §15.5.22, §7.8) and, for another
// WebSocket version, the one it speaks (RFC 6455 §4.4).
UpgradeRefused refuse_upgrade_required(std::string_view reason, bool name_version = false) {
  return refuse(426, reason,
                name_version ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                             : "Upgrade: websocket\r\n",
                "Upgrade, close");
}

// Splits a complete head into lines, dropping the line ends (CRLF or a bare LF).
class LineReader {
 public:
  explicit LineReader(std::string_view text) : rest_(text) {}
  bool next(std::string_view& line) {
    if (rest_.empty()) return false;
    const size_t lf = rest_.find('\n');
    line = rest_.substr(0, lf);
    rest_.remove_prefix(lf == std::string_view::npos ? rest_.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }

 private:
  std::string_view rest_;
};

// What the header fields said, as far as the handshake cares.
struct HandshakeFields {
  int host_count = 0;
  bool upgrade_websocket = false;
  bool connection_upgrade = false;
  int version_count = 0;
  std::string_view version;
  int key_count = 0;
  std::string_view key;
  bool protocols_offered = false;
  std::string_view offered_mqtt;      // "mqtt": MQTT 3.1.1 and 5.0 (IANA registry)
  std::string_view offered_mqtt_v31;  // "mqttv3.1": what MQTT 3.1 clients send
};

void take_field(std::string_view name, std::string_view value, HandshakeFields& f) {
  if (iequals(name, "host")) {
    ++f.host_count;
  } else if (iequals(name, "upgrade")) {
    f.upgrade_websocket = f.upgrade_websocket || list_has_token(value, "websocket");
  } else if (iequals(name, "connection")) {
    f.connection_upgrade = f.connection_upgrade || list_has_token(value, "upgrade");
  } else if (iequals(name, "sec-websocket-version")) {
    ++f.version_count;
    f.version = value;
  } else if (iequals(name, "sec-websocket-key")) {
    ++f.key_count;
    f.key = value;
  } else if (iequals(name, "sec-websocket-protocol")) {
    for_each_element(value, [&](std::string_view p) {
      f.protocols_offered = true;
      if (f.offered_mqtt.empty() && iequals(p, "mqtt")) f.offered_mqtt = p;
      if (f.offered_mqtt_v31.empty() && iequals(p, "mqttv3.1")) f.offered_mqtt_v31 = p;
    });
  }
}

bool is_http_version(std::string_view v) {
  return v.size() == 8 && v.substr(0, 5) == "HTTP/" && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
         v[7] >= '0' && v[7] <= '9';
}

// Judges a complete head (ending in its empty line).
UpgradeResult judge_head(std::string_view head, std::string_view path) {
  LineReader lines(head);
  std::string_view line;
  while (lines.next(line) && line.empty()) {
  }

  // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return refuse(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || !is_http_version(version)) {
    return refuse(400, "malformed request line");
  }
  for (char c : target) {
    if (is_ctl(c) || c == ' ' || c == '\t') return refuse(400, "malformed request target");
  }
  // The handshake "MUST be a valid HTTP request ... the method MUST be GET, and the HTTP
  // version MUST be at least 1.1" (RFC 6455 §4.1).
  if (method != "GET") return refuse(405, "the method is not GET", "Allow: GET\r\n");
  if (version != "HTTP/1.1") return refuse(505, "the HTTP version is not 1.1");
  // Only origin-form: absolute-form is for proxies, and no WebSocket client sends it.
  if (target.front() != '/') return refuse(400, "the request target is not a path");

  HandshakeFields fields;
  while (lines.next(line) && !line.empty()) {
    // Obsolete line folding is refused (RFC 9112 §5.2).
    if (is_ows(line.front())) return refuse(400, "folded header field");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return refuse(400, "malformed header field");
    // A name is a token: this also refuses whitespace before the colon (RFC 9112 §5.1).
    const std::string_view name = line.substr(0, colon);
    if (!is_token(name)) return refuse(400, "malformed header field name");
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
      if (is_ctl(c)) return refuse(400, "control character in a header field");
    }
    take_field(name, value, fields);
  }

  // Exactly one Host in HTTP/1.1 (RFC 9112 §3.2).
  if (fields.host_count != 1) return refuse(400, "not exactly one Host header field");
  if (target.substr(0, target.find('?')) != path) return refuse(404, "no WebSocket at this path");
  if (!fields.upgrade_websocket) return refuse_upgrade_required("not a WebSocket upgrade request");
  if (!fields.connection_upgrade)
    return refuse_upgrade_required("Connection does not list upgrade");
  if (fields.version_count != 1 || fields.version != "13") {
    return refuse_upgrade_required("Sec-WebSocket-Version is not 13", true);
  }
  if (fields.key_count != 1 || !is_key_of_16_bytes(fields.key)) {
    return refuse(400, "Sec-WebSocket-Key is not one base64 value of 16 bytes");
  }
  // A client that lists subprotocols and none of MQTT's speaks something else over the
  // WebSocket: accepting without one would let it talk that to an MQTT broker, so it is refused
  // with 400 (RFC 6455 §4.2.2 lets the server pick none; we choose not to). "mqtt" is preferred
  // over the MQTT 3.1 name: the protocol version itself is read from CONNECT.
  std::string_view chosen = fields.offered_mqtt;
  if (chosen.empty()) chosen = fields.offered_mqtt_v31;
  if (fields.protocols_offered && chosen.empty()) {
    return refuse(400, "Sec-WebSocket-Protocol offers no MQTT subprotocol");
  }

  UpgradeDone done;
  done.subprotocol = std::string(chosen);
  done.response.reserve(160);
  done.response +=
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  done.response += websocket_accept_key(fields.key);
  done.response += "\r\n";
  if (!chosen.empty()) {
    done.response += "Sec-WebSocket-Protocol: ";
    done.response += chosen;
    done.response += "\r\n";
  }
  done.response += "\r\n";
  return done;
}

}  // namespace

std::string websocket_accept_key(std::string_view key) {
  std::string input;
  input.reserve(key.size() + kHandshakeGuid.size());
  input += key;
  input += kHandshakeGuid;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_size, EVP_sha1(), nullptr) !=
      1) {
    // Only a broken OpenSSL installation gets here: a bug, not a client's fault.
    throw std::runtime_error("EVP_Digest(SHA-1) failed");
  }
  // 20 bytes → 28 base64 characters; EVP_EncodeBlock adds a NUL.
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> text{};
  const int n = EVP_EncodeBlock(text.data(), digest.data(), static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(text.data()), static_cast<size_t>(n));
}

UpgradeParser::UpgradeParser(std::string path, size_t max_head_bytes)
    : path_(std::move(path)), max_head_bytes_(max_head_bytes) {}

UpgradeResult UpgradeParser::feed(std::string_view bytes) {
  return feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

UpgradeResult UpgradeParser::feed(std::span<const uint8_t> bytes) {
  if (finished()) {
    UpgradeResult again = result_;
    if (auto* done = std::get_if<UpgradeDone>(&again)) done->consumed = 0;
    return again;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (head_.size() == max_head_bytes_) {
      return finish(refuse(431, "the request head is over the size limit"));
    }
    const char c = static_cast<char>(bytes[i]);
    head_.push_back(c);
    if (c != '\n') {
      ++line_length_;
      continue;
    }
    const bool empty_line =
        line_length_ == 0 || (line_length_ == 1 && head_[head_.size() - 2] == '\r');
    line_length_ = 0;
    if (!empty_line) {
      request_line_seen_ = true;
    } else if (request_line_seen_) {
      UpgradeResult r = judge_head(head_, path_);
      if (auto* done = std::get_if<UpgradeDone>(&r)) done->consumed = i + 1;
      return finish(std::move(r));
    }
  }
  return UpgradeIncomplete{};
}

UpgradeResult UpgradeParser::finish(UpgradeResult result) {
  result_ = std::move(result);
  std::string().swap(head_);
  return result_;
}

}  // namespace harbor::wire
