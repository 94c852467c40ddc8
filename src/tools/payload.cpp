#include "tools/payload.hpp"

#include <time.h>

#include <algorithm>
#include <cstring>

namespace harbor::tools {

namespace {
void put_le(char* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}
uint64_t get_le(const char* in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return v;
}
}  // namespace

void write_stamp(std::string& payload, const Stamp& s) {
  char* p = payload.data();
  put_le(p, s.publisher, 4);
  put_le(p + 4, s.seq, 4);
  put_le(p + 8, s.sent_ns, 8);
}

std::optional<Stamp> read_stamp(std::string_view payload) {
  if (payload.size() < kStampSize) return std::nullopt;
  const char* p = payload.data();
  Stamp s;
  s.publisher = static_cast<uint32_t>(get_le(p, 4));
  s.seq = static_cast<uint32_t>(get_le(p + 4, 4));
  s.sent_ns = get_le(p + 8, 8);
  return s;
}

std::string make_payload(size_t size) {
  size = std::max(size, kStampSize);
  std::string out(size, '\0');
  static constexpr std::string_view kFiller = "harbormq-bench-";
  for (size_t i = kStampSize; i < size; ++i) out[i] = kFiller[(i - kStampSize) % kFiller.size()];
  return out;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace harbor::tools
