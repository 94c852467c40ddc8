#include "config/value_readers.hpp"

#include "config/bridges.hpp"  // describe_value
#include "config/units.hpp"

namespace harbor::config::readers {
namespace {

using hocon::Value;

// MQTT strings and binary data carry a two-byte length [MQTT-1.5.4], [MQTT-1.5.6].
constexpr size_t kMqttStringMax = 65535;

}  // namespace

tl::unexpected<ConfigError> error_at(const Value& v, const std::string& key, std::string message) {
  return tl::unexpected(ConfigError{v.origin.file, v.origin.line, key, std::move(message)});
}

tl::expected<std::string, ConfigError> as_string(const Value& v, const std::string& key) {
  if (v.kind != Value::Kind::Scalar)
    return error_at(v, key, "expected a string, got " + describe_value(v));
  if (v.text.size() > kMqttStringMax) {
    return error_at(v, key, "longer than " + std::to_string(kMqttStringMax) + " bytes");
  }
  return v.text;
}

// true/false (yes/no, on/off) and NanoMQ's 0/1.
tl::expected<bool, ConfigError> as_bool(const Value& v, const std::string& key) {
  if (v.kind == Value::Kind::Scalar) {
    if (v.text == "1") return true;
    if (v.text == "0") return false;
    if (auto b = parse_bool(v.text)) return *b;
  }
  return error_at(v, key, "expected true or false (or 1/0), got " + describe_value(v));
}

tl::expected<int64_t, ConfigError> as_integer(const Value& v, const std::string& key, int64_t min,
                                              int64_t max) {
  if (v.kind != Value::Kind::Scalar) {
    return error_at(v, key, "expected a whole number, got " + describe_value(v));
  }
  auto n = parse_integer(v.text);
  if (!n) return error_at(v, key, n.error());
  if (*n < min || *n > max) {
    return error_at(v, key,
                    "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                        ", got " + std::to_string(*n));
  }
  return *n;
}

// `bare_ms`: what a bare number counts (1000 for seconds, 1 for milliseconds).
tl::expected<std::chrono::milliseconds, ConfigError> as_duration(const Value& v,
                                                                 const std::string& key,
                                                                 int64_t bare_ms, int64_t min_ms,
                                                                 int64_t max_ms) {
  if (v.kind != Value::Kind::Scalar) {
    return error_at(v, key, "expected a duration such as 10s, got " + describe_value(v));
  }
  auto ms = parse_duration_ms(v.text, bare_ms);
  if (!ms) return error_at(v, key, ms.error());
  if (*ms < min_ms || *ms > max_ms) {
    return error_at(v, key,
                    "must be between " + std::to_string(min_ms) + "ms and " +
                        std::to_string(max_ms) + "ms, got " + std::to_string(*ms) + "ms");
  }
  return std::chrono::milliseconds(*ms);
}

// A topic filter: not empty, `#` alone in the last level, `+` alone in its level
// [MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1]; no U+0000 [MQTT-4.7.3-2].
std::optional<std::string> filter_problem(std::string_view filter) {
  if (filter.empty()) return "a topic filter must not be empty";
  if (filter.find('\0') != std::string_view::npos) return "a topic must not hold U+0000";
  size_t start = 0;
  for (;;) {
    size_t slash = filter.find('/', start);
    bool last = slash == std::string_view::npos;
    std::string_view level = filter.substr(start, last ? std::string_view::npos : slash - start);
    if (level.find('#') != std::string_view::npos && (level != "#" || !last)) {
      return "'#' must stand alone in the last level of a topic filter";
    }
    if (level.find('+') != std::string_view::npos && level != "+") {
      return "'+' must stand alone in its level of a topic filter";
    }
    if (last) return std::nullopt;
    start = slash + 1;
  }
}

// A topic name, or part of one (prefix, suffix): no wildcards [MQTT-4.7.0-1], no U+0000.
std::optional<std::string> name_problem(std::string_view name) {
  if (name.find_first_of("+#") != std::string_view::npos) {
    return "must be a topic name without wildcards (+, #)";
  }
  if (name.find('\0') != std::string_view::npos) return "a topic must not hold U+0000";
  return std::nullopt;
}

tl::expected<std::string, ConfigError> as_filter(const Value& v, const std::string& key) {
  auto s = as_string(v, key);
  if (!s) return s;
  if (auto problem = filter_problem(*s)) return error_at(v, key, *problem + ", got \"" + *s + "\"");
  return s;
}

// `allow_empty`: the empty name means "the message's own topic" (remote_topic, local_topic).
tl::expected<std::string, ConfigError> as_topic_name(const Value& v, const std::string& key,
                                                     bool allow_empty) {
  auto s = as_string(v, key);
  if (!s) return s;
  if (s->empty() && !allow_empty) return error_at(v, key, "must not be empty");
  if (auto problem = name_problem(*s)) return error_at(v, key, *problem + ", got \"" + *s + "\"");
  return s;
}

}  // namespace harbor::config::readers
