// The bench payload stamp: publishers write it at the start of every payload, subscribers
// read it back to measure end-to-end latency and per-publisher loss, duplicates and order.
// Layout (16 bytes, little endian): u32 publisher id, u32 sequence number, u64 send time in
// CLOCK_MONOTONIC nanoseconds (system-wide on Linux, so comparable across processes on one
// host). The rest of the payload is filler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace harbor::tools {

constexpr size_t kStampSize = 16;

struct Stamp {
  uint32_t publisher = 0;
  uint32_t seq = 0;
  uint64_t sent_ns = 0;
  bool operator==(const Stamp&) const = default;
};

// Overwrites the first kStampSize bytes of `payload` (which must be at least that long).
void write_stamp(std::string& payload, const Stamp& s);
// std::nullopt when the payload is too short to carry a stamp.
std::optional<Stamp> read_stamp(std::string_view payload);

// A payload of `size` bytes (at least kStampSize) with a readable filler after the stamp.
std::string make_payload(size_t size);

// CLOCK_MONOTONIC in nanoseconds.
uint64_t monotonic_ns();

}  // namespace harbor::tools
