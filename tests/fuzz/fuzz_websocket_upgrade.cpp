// libFuzzer target: arbitrary bytes through the WebSocket UpgradeParser.
// Input layout: byte 0 picks a split point (a fraction of the stream, in 255ths), byte 1 the
// head limit (0: the default; else 16 + 8 × byte); the rest is the client's byte stream.
// Properties checked: no crash or sanitizer report; one-shot, split in two at the chosen point
// and byte-by-byte feeds give the same result (kind, status, response, reason, subprotocol) and
// end the head at the same byte; an incomplete head keeps every byte and no more than the
// limit; Done answers 101 with an MQTT subprotocol or none and ends at an empty line; a
// refusal is one of the documented statuses; a finished parser gives the same result again,
// with consumed 0, and holds nothing.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wire/websocket_upgrade.hpp"

namespace {

using namespace harbor::wire;

[[noreturn]] void die(const char* why) {
  __builtin_trap();
  (void)why;
}

void check(bool ok, const char* why) {
  if (!ok) die(why);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

struct Outcome {
  int kind = 0;  // the variant index
  int status = 0;
  std::string response;
  std::string_view reason;
  std::string subprotocol;
  size_t head_end = 0;  // Done: where the head ended in the whole stream

  bool operator==(const Outcome&) const = default;
};

void check_same_again(UpgradeParser& p, const UpgradeResult& first) {
  const UpgradeResult again = p.feed("more bytes\r\n\r\n");
  check(again.index() == first.index(), "finished parser changed its result");
  if (const auto* d = std::get_if<UpgradeDone>(&again)) {
    const auto& f = std::get<UpgradeDone>(first);
    check(d->consumed == 0, "finished parser consumed bytes");
    check(d->response == f.response && d->subprotocol == f.subprotocol,
          "finished parser gave another Done");
  } else if (const auto* r = std::get_if<UpgradeRefused>(&again)) {
    const auto& f = std::get<UpgradeRefused>(first);
    check(r->status == f.status && r->response == f.response && r->reason == f.reason,
          "finished parser gave another refusal");
  }
  check(p.buffered() == 0 && p.finished(), "finished parser holds bytes");
}

Outcome parse(std::string_view stream, const std::vector<size_t>& ends, size_t max_head) {
  UpgradeParser p("/mqtt", max_head);
  Outcome out;
  size_t start = 0;
  for (size_t end : ends) {
    const UpgradeResult r = p.feed(stream.substr(start, end - start));
    if (std::holds_alternative<UpgradeIncomplete>(r)) {
      check(!p.finished(), "Incomplete from a finished parser");
      check(p.buffered() == end, "an incomplete head did not keep every byte");
      check(p.buffered() <= max_head, "an incomplete head over the limit");
      start = end;
      continue;
    }
    out.kind = static_cast<int>(r.index());
    if (const auto* d = std::get_if<UpgradeDone>(&r)) {
      check(d->consumed >= 1 && d->consumed <= end - start, "Done consumed out of range");
      out.head_end = start + d->consumed;
      check(out.head_end <= max_head, "a head over the limit accepted");
      const std::string_view head = stream.substr(0, out.head_end);
      check(head.ends_with("\n\n") || head.ends_with("\n\r\n"),
            "head does not end in an empty line");
      check(d->response.starts_with("HTTP/1.1 101 Switching Protocols\r\n") &&
                d->response.ends_with("\r\n\r\n"),
            "malformed 101 response");
      check(d->subprotocol.empty() || iequals(d->subprotocol, "mqtt") ||
                iequals(d->subprotocol, "mqttv3.1"),
            "a subprotocol other than MQTT's");
      out.status = 101;
      out.response = d->response;
      out.subprotocol = d->subprotocol;
    } else {
      const auto& x = std::get<UpgradeRefused>(r);
      check(x.status == 400 || x.status == 404 || x.status == 405 || x.status == 426 ||
                x.status == 431 || x.status == 505,
            "an undocumented refusal status");
      check(x.response.starts_with("HTTP/1.1 " + std::to_string(x.status) + " "),
            "refusal response with another status");
      check(!x.reason.empty(), "refusal without a reason");
      out.status = x.status;
      out.response = x.response;
      out.reason = x.reason;
    }
    check(p.buffered() == 0, "a finished parser holds bytes");
    check_same_again(p, r);
    return out;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t split = stream.size() * data[0] / 255;
  const size_t max_head = data[1] == 0 ? kDefaultMaxRequestHead : 16 + 8 * size_t{data[1]};

  const Outcome whole = parse(stream, {stream.size()}, max_head);
  check(parse(stream, {split, stream.size()}, max_head) == whole,
        "split in two differs from one-shot");
  std::vector<size_t> ends;
  for (size_t i = 1; i <= stream.size(); ++i) ends.push_back(i);
  check(parse(stream, ends, max_head) == whole, "byte by byte differs from one-shot");
  return 0;
}
