// The configuration schema: one row per key. The table drives validation, the built-in
// defaults (each row's default is HOCON text run through the same conversion as a file)
// and docs/configuration.md (render_markdown), so the three cannot disagree.
// Immutable static data; safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace harbor::config {

enum class ValueType : uint8_t {
  Bool,
  Integer,  // whole number in [min, max]
  Count,    // Integer that also accepts NanoMQ's "10s" spelling (warned, unit dropped)
  Double,   // in [min_double, max_double]
  String,
  Address,     // "host:port"
  UrlAddress,  // "host:port/path"; no path: "/mqtt"
  StringList,  // [a, b] or "a,b"; every item in `choices` when choices is set
  Enum,        // one of `choices`
  Duration,    // "10s", "500ms", "1m", "1h", "1d"; a bare number is in `bare_unit`
  Size,        // "256MB", "1KB", "10MB" (1024-based); a bare number is bytes
};

enum class BareUnit : uint8_t { None, Milliseconds, Seconds };

// A converted value, handed to a row's setter.
struct Typed {
  bool boolean = false;
  int64_t integer = 0;  // Integer, Count, Size (bytes), Duration (milliseconds)
  double real = 0;
  std::string text;  // String, Address, Enum; UrlAddress: "host:port"
  std::string path;  // UrlAddress: "/path"
  std::vector<std::string> list;
};

struct SchemaRow {
  std::string_view key;
  ValueType type;
  std::string_view default_value;  // HOCON text, converted like a file value
  bool reloadable;                 // may change on `harbormq reload`
  bool ours;                       // HarborMQ's key, not NanoMQ's
  std::string_view doc;
  int64_t min = 0;  // Integer/Count/Size (bytes)/Duration (ms)
  int64_t max = INT64_MAX;
  double min_double = 0;
  double max_double = 0;
  std::string_view choices;  // "a|b|c" for Enum and StringList
  BareUnit bare_unit = BareUnit::None;
  std::string_view alias;  // another accepted spelling of the last key segment
  void (*apply)(Config&, const Typed&) = nullptr;
  std::string (*show)(const Config&) = nullptr;  // the key's value in `c`, for reload diffs
};

// NanoMQ sections we accept but do not implement: one warning each, contents unchecked.
struct UnimplementedSection {
  std::string_view path;
  std::string_view what;
};

// NanoMQ keys inside implemented sections that we accept with a warning (with any subtree).
struct UnimplementedKey {
  std::string_view path;
  std::string_view why;
};

std::span<const SchemaRow> schema();
std::span<const UnimplementedSection> unimplemented_sections();
std::span<const UnimplementedKey> unimplemented_keys();

// Sections whose keys are validated against the schema ("mqtt", "listeners.tcp", ...).
std::span<const std::string_view> implemented_sections();

// The row for `key` (its canonical name or alias), or nullptr.
const SchemaRow* find_row(std::string_view key);

// The known name closest to `key` by edit distance: a schema key, section or accepted key.
std::string closest_key(std::string_view key);

// The candidate closest to `key` by edit distance (the first of equals); "" when none.
std::string closest_of(std::string_view key, std::span<const std::string_view> candidates);

// Levenshtein distance; exposed for tests.
size_t edit_distance(std::string_view a, std::string_view b);

std::string_view type_name(ValueType type);

// The whole of docs/configuration.md.
std::string render_markdown();

}  // namespace harbor::config
