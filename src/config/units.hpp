// Parsing of the unit-carrying values NanoMQ's files use: durations ("10s", "500ms") and
// sizes ("256MB", "1KB"). Errors are plain messages; the caller adds file, line and key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace harbor::config {

// ASCII lower case (keys, enum values and booleans are case-insensitive).
std::string lower(std::string_view text);

// true/yes/on and false/no/off, any case (NanoMQ's HOCON reader takes all six); nullopt else.
std::optional<bool> parse_bool(std::string_view text);

// A whole number with no sign or unit ("2048"); rejects overflow past INT64_MAX.
tl::expected<int64_t, std::string> parse_integer(std::string_view text);

// "10s" → 10000. Units: ms, s, m, h, d (case-insensitive). A bare number is multiplied by
// `bare_ms` (1000 for keys NanoMQ counts in seconds, 1 for milliseconds); `bare_ms == 0`
// rejects bare numbers.
tl::expected<int64_t, std::string> parse_duration_ms(std::string_view text, int64_t bare_ms);

// "256MB" → 268435456. Units: B, KB, MB, GB, also K, M, G (1024-based, case-insensitive),
// as NanoMQ reads them. A bare number is bytes.
tl::expected<int64_t, std::string> parse_size_bytes(std::string_view text);

}  // namespace harbor::config
