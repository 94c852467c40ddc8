// A HOCON reader covering what NanoMQ's configuration files use: objects, dotted keys,
// `=`/`:` separators, arrays, quoted and unquoted strings, comments, object merging,
// `include`, `${path}` / `${?ENV}` substitutions and value concatenation.
// It produces an untyped tree; units and types are the schema's business (schema.hpp).
// Pure functions of their input (plus the files named by `include` and, for `${?X}`, the
// environment); callable from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "config/config.hpp"

namespace harbor::config::hocon {

// Where a value was written, so every later error can name it.
struct Origin {
  std::string file;
  int line = 0;  // 1-based; 0 when the source has no lines (environment, command line)
};

// One piece of a value that still holds substitutions: literal text or `${path}`.
struct Piece {
  enum class Kind : uint8_t { Text, Substitution };
  Kind kind = Kind::Text;
  std::string text;       // literal text, or the substitution's path
  bool optional = false;  // `${?path}`
  bool quoted = false;
};

struct Field;

struct Value {
  enum class Kind : uint8_t {
    Scalar,  // any string, number or boolean, kept as text
    Object,
    Array,
    Unresolved,  // holds substitutions until resolve() runs
    Absent,      // an optional substitution that found nothing: the field disappears
  };
  Kind kind = Kind::Scalar;
  std::string text;           // Scalar
  bool quoted = false;        // Scalar written (at least partly) in quotes
  std::vector<Field> fields;  // Object, in first-written order
  std::vector<Value> items;   // Array
  std::vector<Piece> pieces;  // Unresolved
  Origin origin;

  bool is_object() const { return kind == Kind::Object; }
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Follows a dotted path of plain keys ("mqtt.max_packet_size"); nullptr when missing.
  const Value* find_path(std::string_view dotted) const;
};

struct Field {
  std::string key;
  Value value;
};

struct ParseOptions {
  // Directory that relative `include` paths start from ("" = current directory).
  std::string base_dir;
  int include_depth = 0;  // guards against include cycles
};

// Parses a whole document (root braces optional) into an object. Warnings (e.g. a missing
// optional include) are appended to `warnings`. Substitutions are left unresolved.
tl::expected<Value, ConfigError> parse(std::string_view text, const std::string& file,
                                       const ParseOptions& options,
                                       std::vector<std::string>& warnings);

// Parses a single value (as written after `key =`), e.g. from an environment variable.
// The whole text must be consumed.
tl::expected<Value, ConfigError> parse_value(std::string_view text, const std::string& file);

// Reads and parses a file; relative includes start from the file's directory.
tl::expected<Value, ConfigError> parse_file(const std::string& path, int include_depth,
                                            std::vector<std::string>& warnings);

// Sets `value` at `path` inside `root` (an object), creating objects on the way and merging
// when both the old and new value are objects (HOCON's rule for repeated keys).
void set_path(Value& root, const std::vector<std::string>& path, Value value);

// Merges object `from` into object `into`, later values winning, objects merged deeply.
void merge_into(Value& into, Value from);

// Replaces every substitution by what it names: a path in `root`, or else an environment
// variable of that exact name. Errors for a missing required target or a cycle.
tl::expected<void, ConfigError> resolve(Value& root);

// Splits "a.b.c" into its keys (no quoting support: for paths we build ourselves).
std::vector<std::string> split_path(std::string_view dotted);

}  // namespace harbor::config::hocon
