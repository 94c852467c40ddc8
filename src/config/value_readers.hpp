// Internal to src/config: typed reads of single HOCON values for the section readers
// (bridges.cpp, auth.cpp). Every error names the value's file, line and the full key. Pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "config/config.hpp"
#include "config/hocon.hpp"

namespace harbor::config::readers {

tl::unexpected<ConfigError> error_at(const hocon::Value& v, const std::string& key,
                                     std::string message);
// A scalar of at most 65,535 bytes (an MQTT string).
tl::expected<std::string, ConfigError> as_string(const hocon::Value& v, const std::string& key);
// true/false (yes/no, on/off) and NanoMQ's 0/1.
tl::expected<bool, ConfigError> as_bool(const hocon::Value& v, const std::string& key);
tl::expected<int64_t, ConfigError> as_integer(const hocon::Value& v, const std::string& key,
                                              int64_t min, int64_t max);
// `bare_ms`: what a bare number counts (1000 for seconds, 1 for milliseconds).
tl::expected<std::chrono::milliseconds, ConfigError> as_duration(const hocon::Value& v,
                                                                 const std::string& key,
                                                                 int64_t bare_ms, int64_t min_ms,
                                                                 int64_t max_ms);
// What is wrong with a topic filter / a topic name (or part of one), if anything.
std::optional<std::string> filter_problem(std::string_view filter);
std::optional<std::string> name_problem(std::string_view name);
tl::expected<std::string, ConfigError> as_filter(const hocon::Value& v, const std::string& key);
// `allow_empty`: the empty name means "the message's own topic" (remote_topic, local_topic).
tl::expected<std::string, ConfigError> as_topic_name(const hocon::Value& v, const std::string& key,
                                                     bool allow_empty);

}  // namespace harbor::config::readers
