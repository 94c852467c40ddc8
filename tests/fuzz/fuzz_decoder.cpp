// libFuzzer target: arbitrary bytes through the stream Decoder and the ServerProtocol.
// Input layout: byte 0 chooses the starting version (bits 0-1) and the feed chunk size
// (bits 2-7, 0 = all at once); the rest is the byte stream.
// Properties checked: no crash or sanitizer report; every decoded packet re-encodes to bytes
// that decode to the same packet; errors are sticky.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"
#include "mqtt/protocol.hpp"

namespace {

using namespace harbor::mqtt;

[[noreturn]] void die(const char* why) {
  __builtin_trap();
  (void)why;
}

void check_round_trip(const Packet& p, Version v) {
  const std::string wire = encode(p, v);
  if (wire.empty()) return;  // AUTH has no encoding before 5.0; decode never yields it there
  Decoder again;
  again.set_version(v);
  again.feed(wire);
  auto r = again.next();
  if (!r || !*r) die("re-encoded packet does not decode");
  if (!(**r == p)) die("re-encoded packet decodes differently");
  if (again.buffered() != 0) die("re-encoding has trailing bytes");
}

Version version_from(uint8_t bits) {
  switch (bits & 3) {
    case 1:
      return Version::v5;
    case 2:
      return Version::v31;
    default:
      return Version::v311;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Version start = version_from(data[0]);
  const size_t chunk = data[0] >> 2;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  Decoder d(64 * 1024);
  d.set_version(start);
  size_t pos = 0;
  bool failed = false;
  while (pos < stream.size() && !failed) {
    const size_t n = chunk == 0 ? stream.size() - pos : std::min(chunk, stream.size() - pos);
    d.feed(stream.substr(pos, n));
    pos += n;
    for (;;) {
      const Version before = d.version();
      auto r = d.next();
      if (!r) {
        failed = true;
        auto again = d.next();
        if (again || again.error().reason != r.error().reason) die("error not sticky");
        break;
      }
      if (!*r) break;
      const Packet& p = **r;
      check_round_trip(p, std::holds_alternative<Connect>(p) ? d.version() : before);
    }
  }

  ServerProtocol server({.max_packet_size = 64 * 1024, .max_topic_alias = 8});
  server.feed(stream);
  for (int i = 0; i < 1000; ++i) {
    auto r = server.next();
    if (!r) {
      if (server.phase() != ProtocolPhase::Closed) die("error without Closed phase");
      break;
    }
    if (!*r) break;
    if (auto* pub = std::get_if<Publish>(&**r)) {
      if (pub->topic.empty()) die("PUBLISH topic not resolved");
    }
    std::string out;
    server.encode(**r, out);
  }

  ClientProtocol client(start, 64 * 1024);
  client.feed(stream);
  for (int i = 0; i < 1000; ++i) {
    auto r = client.next();
    if (!r || !*r) break;
  }
  return 0;
}
