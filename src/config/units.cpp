#include "config/units.hpp"

#include <cctype>
#include <utility>

namespace harbor::config {
namespace {

// Splits "10s" into "10" and "s", trimming spaces between them ("10 s" is accepted).
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  std::string_view number = text.substr(0, i);
  std::string_view unit = text.substr(i);
  while (!unit.empty() && (unit.front() == ' ' || unit.front() == '\t')) unit.remove_prefix(1);
  return {number, unit};
}

tl::expected<int64_t, std::string> scale(int64_t number, int64_t factor) {
  if (factor != 0 && number > INT64_MAX / factor) return tl::unexpected(std::string("too large"));
  return number * factor;
}

}  // namespace

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string v = lower(text);
  if (v == "true" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "no" || v == "off") return false;
  return std::nullopt;
}

tl::expected<int64_t, std::string> parse_integer(std::string_view text) {
  if (text.empty()) return tl::unexpected(std::string("expected a number"));
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return tl::unexpected("expected a whole number, got \"" + std::string(text) + "\"");
    }
    if (value > (INT64_MAX - (c - '0')) / 10) return tl::unexpected(std::string("too large"));
    value = value * 10 + (c - '0');
  }
  return value;
}

tl::expected<int64_t, std::string> parse_duration_ms(std::string_view text, int64_t bare_ms) {
  auto [number_text, unit_text] = split_number(text);
  if (number_text.empty()) {
    return tl::unexpected("expected a duration such as 10s or 500ms, got \"" + std::string(text) +
                          "\"");
  }
  auto number = parse_integer(number_text);
  if (!number) return tl::unexpected(number.error());
  std::string unit = lower(unit_text);
  int64_t factor;
  if (unit.empty()) {
    if (bare_ms == 0) {
      return tl::unexpected("a duration needs a unit (ms, s, m, h, d), got \"" + std::string(text) +
                            "\"");
    }
    factor = bare_ms;
  } else if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else if (unit == "d") {
    factor = 86'400'000;
  } else {
    return tl::unexpected("unknown duration unit \"" + std::string(unit_text) +
                          "\" (use ms, s, m, h or d)");
  }
  return scale(*number, factor);
}

tl::expected<int64_t, std::string> parse_size_bytes(std::string_view text) {
  auto [number_text, unit_text] = split_number(text);
  if (number_text.empty()) {
    return tl::unexpected("expected a size such as 256MB or 1KB, got \"" + std::string(text) +
                          "\"");
  }
  auto number = parse_integer(number_text);
  if (!number) return tl::unexpected(number.error());
  std::string unit = lower(unit_text);
  int64_t factor;
  if (unit.empty() || unit == "b") {
    factor = 1;
  } else if (unit == "kb" || unit == "k") {
    factor = int64_t{1} << 10;
  } else if (unit == "mb" || unit == "m") {
    factor = int64_t{1} << 20;
  } else if (unit == "gb" || unit == "g") {
    factor = int64_t{1} << 30;
  } else {
    return tl::unexpected("unknown size unit \"" + std::string(unit_text) +
                          "\" (use B, KB, MB or GB)");
  }
  return scale(*number, factor);
}

}  // namespace harbor::config
