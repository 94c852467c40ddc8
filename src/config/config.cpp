// Loading: HOCON tree (hocon.hpp) + schema (schema.hpp) → typed Config.
#include "config/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <stdexcept>

#include "config/auth.hpp"
#include "config/bridges.hpp"
#include "config/hocon.hpp"
#include "config/listeners.hpp"
#include "config/protections.hpp"
#include "config/schema.hpp"
#include "config/units.hpp"

extern char** environ;

namespace harbor::config {
namespace {

using hocon::Value;

constexpr std::string_view kEnvironment = "<environment>";
constexpr std::string_view kCommandLine = "<command line>";
constexpr std::string_view kEnvPrefix = "HARBORMQ_";
constexpr std::string_view kBridgesKey = "bridges.mqtt";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string describe(const Value& v) { return describe_value(v); }

std::vector<std::string_view> split_choices(std::string_view choices) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= choices.size()) {
    size_t bar = choices.find('|', start);
    if (bar == std::string_view::npos) bar = choices.size();
    out.push_back(choices.substr(start, bar - start));
    start = bar + 1;
  }
  return out;
}

bool is_choice(std::string_view choices, std::string_view value) {
  auto all = split_choices(choices);
  return std::find(all.begin(), all.end(), value) != all.end();
}

std::string warning_text(const hocon::Origin& origin, std::string_view key,
                         std::string_view message) {
  return ConfigError{origin.file, origin.line, std::string(key), std::string(message)}.to_string();
}

// Converts one value by its schema row. Errors and warnings name the value's origin.
// "host:port" with a port of 0-65535 and a host that is not empty.
bool is_host_port(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  auto port = parse_integer(std::string_view(text).substr(colon + 1));
  return port && *port >= 0 && *port <= 65535;
}

class Converter {
 public:
  Converter(const SchemaRow& row, const std::string& key, const Value& value,
            std::vector<std::string>& warnings)
      : row_(row), key_(key), value_(value), warnings_(warnings) {}

  tl::expected<Typed, ConfigError> run() {
    Typed out;
    if (row_.type == ValueType::StringList) return list();
    if (value_.kind != Value::Kind::Scalar) {
      return fail("expected " + std::string(type_name(row_.type)) + ", got " + describe(value_));
    }
    const std::string& text = value_.text;
    switch (row_.type) {
      case ValueType::Bool: {
        auto b = parse_bool(text);
        if (!b) return fail("expected true or false, got \"" + text + "\"");
        out.boolean = *b;
        return out;
      }
      case ValueType::Integer: {
        auto n = parse_integer(text);
        if (!n) return fail(n.error());
        out.integer = *n;
        return ranged(out, "");
      }
      case ValueType::Count: {
        auto n = parse_integer(text);
        if (!n) {
          // NanoMQ's shipped files write `max_awaiting_rel = 10s`. Its reader takes the
          // number, so we do the same, and say so.
          auto as_duration = parse_duration_ms(text, 0);
          size_t digits = 0;
          while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
            ++digits;
          }
          if (!as_duration || digits == 0) return fail(n.error());
          n = parse_integer(std::string_view(text).substr(0, digits));
          if (!n) return fail(n.error());
          warnings_.push_back(warning_text(value_.origin, key_,
                                           "a count written as a duration (\"" + text +
                                               "\", as NanoMQ's files do); read as " +
                                               std::to_string(*n)));
        }
        out.integer = *n;
        return ranged(out, "");
      }
      case ValueType::Double: {
        char* end = nullptr;
        double d = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(d)) {
          return fail("expected a number, got \"" + text + "\"");
        }
        if (d < row_.min_double || d > row_.max_double) {
          return fail("must be between " + format_double(row_.min_double) + " and " +
                      format_double(row_.max_double) + ", got " + text);
        }
        out.real = d;
        return out;
      }
      case ValueType::String:
        out.text = text;
        return out;
      case ValueType::Address: {
        if (!is_host_port(text)) {
          return fail("expected host:port with a port of 0-65535, got \"" + text + "\"");
        }
        out.text = text;
        return out;
      }
      case ValueType::UrlAddress: {
        // A host has no '/', so the first one starts the path ("[::1]:8083/mqtt" too).
        const size_t slash = text.find('/');
        std::string address = text.substr(0, slash);
        std::string path = slash == std::string::npos ? "/mqtt" : text.substr(slash);
        if (!is_host_port(address)) {
          return fail("expected host:port/path with a port of 0-65535, got \"" + text + "\"");
        }
        for (char c : path) {
          // The path is compared with the request target's path (the query string is not
          // part of it), so it may not hold a query, a fragment or what no request line can.
          if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '?' || c == '#') {
            return fail("the path after host:port may not contain spaces, '?' or '#', got \"" +
                        text + "\"");
          }
        }
        out.text = std::move(address);
        out.path = std::move(path);
        return out;
      }
      case ValueType::Enum: {
        std::string v = lower(text);
        if (!is_choice(row_.choices, v)) {
          return fail("expected one of " + std::string(row_.choices) + ", got \"" + text + "\"");
        }
        out.text = v;
        return out;
      }
      case ValueType::Duration: {
        int64_t bare = row_.bare_unit == BareUnit::Seconds        ? 1000
                       : row_.bare_unit == BareUnit::Milliseconds ? 1
                                                                  : 0;
        auto ms = parse_duration_ms(text, bare);
        if (!ms) return fail(ms.error());
        out.integer = *ms;
        return ranged(out, "ms");
      }
      case ValueType::Size: {
        auto bytes = parse_size_bytes(text);
        if (!bytes) return fail(bytes.error());
        out.integer = *bytes;
        return ranged(out, " bytes");
      }
      case ValueType::StringList:
        break;
    }
    return fail("unsupported type");
  }

 private:
  static std::string format_double(double d) {
    std::string s = std::to_string(d);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  tl::expected<Typed, ConfigError> ranged(Typed out, std::string_view unit) {
    if (out.integer < row_.min || out.integer > row_.max) {
      return fail("must be between " + std::to_string(row_.min) + std::string(unit) + " and " +
                  std::to_string(row_.max) + std::string(unit) + ", got " +
                  std::to_string(out.integer) + std::string(unit));
    }
    return out;
  }

  // `[file, console]`, or NanoMQ's classic "file,console" as one string.
  tl::expected<Typed, ConfigError> list() {
    Typed out;
    if (value_.kind == Value::Kind::Array) {
      for (const auto& item : value_.items) {
        if (item.kind != Value::Kind::Scalar) {
          return fail("list items must be strings, got " + describe(item));
        }
        out.list.push_back(item.text);
      }
    } else if (value_.kind == Value::Kind::Scalar) {
      std::string_view rest = value_.text;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        auto item = trim(rest.substr(0, comma));
        if (!item.empty()) out.list.emplace_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else {
      return fail("expected a list, got " + describe(value_));
    }
    for (auto& item : out.list) {
      item = lower(item);
      if (!row_.choices.empty() && !is_choice(row_.choices, item)) {
        return fail("expected items from " + std::string(row_.choices) + ", got \"" + item + "\"");
      }
    }
    return out;
  }

  tl::unexpected<ConfigError> fail(std::string message) const {
    return tl::unexpected(
        ConfigError{value_.origin.file, value_.origin.line, key_, std::move(message)});
  }

  const SchemaRow& row_;
  const std::string& key_;
  const Value& value_;
  std::vector<std::string>& warnings_;
};

// Walks the merged tree against the schema, filling `config_`.
class Builder {
 public:
  Builder(Config& config, std::vector<std::string>& warnings)
      : config_(config), warnings_(warnings) {}

  tl::expected<void, ConfigError> walk(const Value& object, const std::string& prefix) {
    for (const auto& field : object.fields) {
      std::string path = prefix.empty() ? field.key : prefix + "." + field.key;
      if (auto r = visit(path, prefix, field.value); !r) return r;
    }
    return {};
  }

 private:
  tl::expected<void, ConfigError> visit(const std::string& path, const std::string& prefix,
                                        const Value& value) {
    // Dotted keys (`bridges.mqtt.emqx1 { }`) and overrides arrive as nested objects, so
    // every bridge is reached through the top-level `bridges`.
    if (path == "bridges") return visit_bridges(value);
    if (path == "auth") {
      BridgeReaderHooks hooks{
          .warn_once = [this](const std::string& key, const hocon::Origin& origin,
                              const std::string& message) { warn_once(key, origin, message); },
          .record_origin = [this](std::string_view key,
                                  const hocon::Origin& origin) { record_origin(key, origin); }};
      return read_auth(value, config_, hooks);
    }
    if (const SchemaRow* row = find_row(path)) {
      auto typed = Converter(*row, path, value, warnings_).run();
      if (!typed) return tl::unexpected(typed.error());
      row->apply(config_, *typed);
      record_origin(row->key, value.origin);
      return {};
    }
    for (const auto& section : unimplemented_sections()) {
      if (section.path == path) {
        note_section(path, value.origin,
                     "NanoMQ section not implemented yet (" + std::string(section.what) +
                         "); accepted, contents ignored");
        return {};
      }
    }
    for (const auto& key : unimplemented_keys()) {
      if (key.path == path) {
        warn_once(path, value.origin,
                  "NanoMQ key not implemented (" + std::string(key.why) + "); accepted, ignored");
        return {};
      }
    }
    if (is_container(path)) {
      if (!value.is_object()) {
        return tl::unexpected(
            ConfigError{value.origin.file, value.origin.line, path,
                        "is a section: expected { ... }, got " + describe(value)});
      }
      return walk(value, path);
    }
    // NanoMQ's named listeners: `listeners.tcp.<name> { bind = ... }`, and ws, ssl, wss.
    if (auto kind = listener_kind_of(prefix); kind && value.is_object()) {
      return read_named_listener(*kind, path.substr(prefix.size() + 1), value, config_,
                                 listener_hooks());
    }
    return tl::unexpected(ConfigError{value.origin.file, value.origin.line, path,
                                      "unknown key, did you mean " + closest_key(path) + "?"});
  }

  // `bridges.mqtt` is read by bridges.cpp; every other `bridges.<type>` is a NanoMQ section
  // not implemented yet.
  tl::expected<void, ConfigError> visit_bridges(const Value& value) {
    if (!value.is_object()) {
      return tl::unexpected(ConfigError{value.origin.file, value.origin.line, "bridges",
                                        "is a section: expected { ... }, got " + describe(value)});
    }
    BridgeReaderHooks hooks{
        .warn_once = [this](const std::string& key, const hocon::Origin& origin,
                            const std::string& message) { warn_once(key, origin, message); },
        .record_origin = [this](std::string_view key,
                                const hocon::Origin& origin) { record_origin(key, origin); }};
    for (const auto& field : value.fields) {
      std::string path = "bridges." + field.key;
      if (field.key == "mqtt") {
        if (auto r = read_mqtt_bridges(field.value, config_, hooks); !r) return r;
        continue;
      }
      std::string what = "`" + field.key + "` bridges";
      for (const auto& section : unimplemented_sections()) {
        if (section.path == path) what = section.what;
      }
      note_section(path, field.value.origin,
                   "NanoMQ section not implemented yet (" + what + "); accepted, contents ignored");
    }
    return {};
  }

  ListenerReaderHooks listener_hooks() {
    return ListenerReaderHooks{
        .apply_row = [this](const SchemaRow& row, const std::string& key, const Value& value,
                            Config& scratch) -> tl::expected<void, ConfigError> {
          auto typed = Converter(row, key, value, warnings_).run();
          if (!typed) return tl::unexpected(typed.error());
          row.apply(scratch, *typed);
          return {};
        },
        .record_origin = [this](std::string_view key,
                                const hocon::Origin& origin) { record_origin(key, origin); }};
  }

  // A path that holds schema keys or sections below it ("listeners", "mqtt").
  static bool is_container(const std::string& path) {
    std::string dotted = path + ".";
    for (const auto& row : schema()) {
      if (row.key.starts_with(dotted)) return true;
    }
    for (const auto& section : unimplemented_sections()) {
      if (section.path.starts_with(dotted)) return true;
    }
    return false;
  }

  void note_section(const std::string& path, const hocon::Origin& origin,
                    const std::string& message) {
    if (std::find(config_.unimplemented_sections.begin(), config_.unimplemented_sections.end(),
                  path) == config_.unimplemented_sections.end()) {
      config_.unimplemented_sections.push_back(path);
    }
    warn_once(path, origin, message);
  }

  void record_origin(std::string_view key, const hocon::Origin& origin) {
    std::string where = origin.file;
    if (origin.line > 0) where += ":" + std::to_string(origin.line);
    auto& entries = config_.origins.entries;
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&](const auto& e) { return e.first == key; });
    if (it == entries.end()) entries.emplace_back(std::string(key), std::move(where));
    else it->second = std::move(where);
  }

  void warn_once(const std::string& path, const hocon::Origin& origin, const std::string& message) {
    if (warned_.insert(path).second) warnings_.push_back(warning_text(origin, path, message));
  }

  Config& config_;
  std::vector<std::string>& warnings_;
  std::set<std::string> warned_;
};

// Everything from the environment or the command line has no line; `file` names the source.
void stamp(Value& value, const std::string& file) {
  value.origin = hocon::Origin{file, 0};
  for (auto& field : value.fields) stamp(field.value, file);
  for (auto& item : value.items) stamp(item, file);
}

// "10", "[a, b]", "\"x\"" are HOCON values; anything else (a path with spaces, "a,b") is
// taken as the string it is, so shell users need no extra quoting.
Value override_value(std::string_view text, const std::string& file) {
  auto parsed = hocon::parse_value(text, file);
  Value value;
  if (parsed) {
    value = std::move(*parsed);
  } else {
    value.kind = Value::Kind::Scalar;
    value.text = std::string(trim(text));
    value.quoted = true;
  }
  stamp(value, file);
  return value;
}

tl::expected<void, ConfigError> apply_override(Value& root, const std::vector<std::string>& path,
                                               std::string_view text, const std::string& file,
                                               const std::string& shown_key) {
  for (const auto& key : path) {
    if (key.empty()) {
      return tl::unexpected(ConfigError{file, 0, shown_key, "empty key segment"});
    }
  }
  hocon::set_path(root, path, override_value(text, file));
  return {};
}

tl::expected<void, ConfigError> apply_environment(Value& root) {
  std::vector<std::string> entries;
  for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
    std::string_view entry(*env);
    if (entry.size() > kEnvPrefix.size() &&
        lower(entry.substr(0, kEnvPrefix.size())) == lower(kEnvPrefix)) {
      entries.emplace_back(entry);
    }
  }
  // Sorted so the outcome never depends on the environment's order.
  std::sort(entries.begin(), entries.end());
  for (const auto& entry : entries) {
    size_t equals = entry.find('=');
    std::string name = entry.substr(kEnvPrefix.size(), equals - kEnvPrefix.size());
    // Every configuration key has a section, so its variable holds "__"; HARBORMQ_ names
    // without one belong to scripts and tools, not to us.
    if (name.find("__") == std::string::npos) continue;
    std::vector<std::string> path;
    size_t start = 0;
    for (;;) {
      size_t sep = name.find("__", start);
      path.push_back(lower(name.substr(start, sep == std::string::npos ? sep : sep - start)));
      if (sep == std::string::npos) break;
      start = sep + 2;
    }
    std::string value = equals == std::string::npos ? "" : entry.substr(equals + 1);
    if (auto r = apply_override(root, path, value, std::string(kEnvironment), name); !r) return r;
  }
  return {};
}

tl::expected<void, ConfigError> apply_command_line(Value& root,
                                                   const std::vector<std::string>& overrides) {
  for (const auto& item : overrides) {
    size_t equals = item.find('=');
    std::string key(trim(std::string_view(item).substr(0, equals)));
    if (equals == std::string::npos || key.empty()) {
      return tl::unexpected(ConfigError{std::string(kCommandLine), 0, key,
                                        "expected key=value, got \"" + item + "\""});
    }
    std::string_view text = std::string_view(item).substr(equals + 1);
    if (auto r = apply_override(root, hocon::split_path(key), text, std::string(kCommandLine), key);
        !r) {
      return r;
    }
  }
  return {};
}

// JWT authentication of the HTTP API is not implemented: a file asking for it is refused
// rather than served with Basic authentication or none.
tl::expected<void, ConfigError> check_http_server(const Value& root, const Config& config) {
  if (config.http_server.auth_type != HttpAuthType::Jwt) return {};
  hocon::Origin origin{std::string(kCommandLine), 0};
  if (const Value* http = root.find("http_server"); http && http->is_object()) {
    if (const Value* type = http->find("auth_type")) origin = type->origin;
  }
  return tl::unexpected(ConfigError{origin.file, origin.line, "http_server.auth_type",
                                    "jwt is not implemented yet; use auth_type = basic "
                                    "(username and password)"});
}

// `from_file`: a file (or text) was given, so NanoMQ's rule applies: the sqlite section is
// enabled by being present, and runs in memory when absent. The same presence rule switches
// listeners.ws, listeners.ssl and listeners.wss on, whether or not a file was given.
tl::expected<LoadResult, ConfigError> build(Value& root, std::string source, bool from_file,
                                            std::vector<std::string> warnings) {
  if (auto r = hocon::resolve(root); !r) return tl::unexpected(r.error());
  auto config = std::make_shared<Config>(*defaults());
  config->source = std::move(source);
  if (from_file && root.find("sqlite") == nullptr) config->sqlite.enabled = false;
  // listeners.ws is on when its section is present, from a file or an override (NanoMQ's
  // default nanomq.conf has one and listens on it); `enable = false` in it still wins.
  // A section holding only named listeners (`listeners.ssl.extra {}`) is not the unnamed one.
  if (const Value* listeners = root.find("listeners"); listeners && listeners->is_object()) {
    auto present = [listeners](const char* kind) {
      const Value* section = listeners->find(kind);
      return section != nullptr && unnamed_listener_present(*section);
    };
    if (present("ws")) config->ws.enabled = true;
    if (present("ssl")) config->ssl.enabled = true;
    if (present("wss")) config->wss.enabled = true;
  }
  // http_server is on when its section is present (NanoMQ's rule); `enable = false` wins.
  if (const Value* http = root.find("http_server"); http && http->is_object()) {
    config->http_server.enabled = true;
  }
  Builder builder(*config, warnings);
  if (auto r = builder.walk(root, ""); !r) return tl::unexpected(r.error());
  if (auto r = check_http_server(root, *config); !r) return tl::unexpected(r.error());
  if (auto r = check_listener_addresses(*config); !r) return tl::unexpected(r.error());
  config->unenforced_protections = find_unenforced_protections(root);
  return LoadResult{std::move(config), std::move(warnings)};
}

Value empty_root() {
  Value root;
  root.kind = Value::Kind::Object;
  return root;
}

std::shared_ptr<const Config> build_defaults() {
  auto config = std::make_shared<Config>();
  std::vector<std::string> warnings;
  for (const auto& row : schema()) {
    auto value = hocon::parse_value(row.default_value, "<defaults>");
    if (!value) throw std::logic_error("schema default: " + value.error().to_string());
    std::string key(row.key);
    auto typed = Converter(row, key, *value, warnings).run();
    if (!typed) throw std::logic_error("schema default: " + typed.error().to_string());
    row.apply(*config, *typed);
  }
  return config;
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::string Config::key_error(std::string_view key, std::string_view message) const {
  std::string where = "<defaults>";
  for (const auto& [k, origin] : origins.entries) {
    if (k == key) where = origin;
  }
  return where + ": " + std::string(key) + ": " + std::string(message);
}

std::shared_ptr<const Config> defaults() {
  static const std::shared_ptr<const Config> instance = build_defaults();
  return instance;
}

tl::expected<LoadResult, ConfigError> load_file(const std::string& path) {
  std::vector<std::string> warnings;
  auto root = hocon::parse_file(path, 0, warnings);
  if (!root) return tl::unexpected(root.error());
  return build(*root, path, true, std::move(warnings));
}

tl::expected<LoadResult, ConfigError> load_string(const std::string& text,
                                                  const std::string& name) {
  std::vector<std::string> warnings;
  auto root = hocon::parse(text, name, hocon::ParseOptions{}, warnings);
  if (!root) return tl::unexpected(root.error());
  return build(*root, name, true, std::move(warnings));
}

tl::expected<LoadResult, ConfigError> load(const LoadOptions& options) {
  std::vector<std::string> warnings;
  Value root = empty_root();
  if (!options.path.empty()) {
    auto parsed = hocon::parse_file(options.path, 0, warnings);
    if (!parsed) return tl::unexpected(parsed.error());
    root = std::move(*parsed);
  }
  if (options.read_environment) {
    if (auto r = apply_environment(root); !r) return tl::unexpected(r.error());
  }
  if (auto r = apply_command_line(root, options.overrides); !r) return tl::unexpected(r.error());
  return build(root, options.path, !options.path.empty(), std::move(warnings));
}

std::vector<KeyChange> diff(const Config& before, const Config& after) {
  std::vector<KeyChange> changes;
  for (const auto& row : schema()) {
    std::string old_value = row.show(before);
    std::string new_value = row.show(after);
    if (old_value != new_value) {
      changes.push_back(KeyChange{std::string(row.key), std::move(old_value), std::move(new_value),
                                  row.reloadable});
    }
  }
  diff_named_listeners(before, after, changes);
  // The bridges are one unit in the diff; a reload applies them (each bridge that changed is
  // restarted alone, app::Server::reconfigure).
  if (before.bridges != after.bridges || before.bridge_cache != after.bridge_cache) {
    std::string old_value = describe_bridges(before);
    std::string new_value = describe_bridges(after);
    if (old_value == new_value) {
      new_value += before.bridges != after.bridges ? " (settings changed)" : " (cache changed)";
    }
    changes.push_back(
        KeyChange{std::string(kBridgesKey), std::move(old_value), std::move(new_value), true});
  }
  // auth {} is one unit too, and reloadable (NanoMQ: hot updatable); its files are re-read.
  if (before.auth != after.auth) {
    std::string old_value = describe_auth(before);
    std::string new_value = describe_auth(after);
    if (old_value == new_value) new_value += " (users or rules changed)";
    changes.push_back(KeyChange{"auth", std::move(old_value), std::move(new_value), true});
  }
  return changes;
}

std::string describe_value(const hocon::Value& v) {
  switch (v.kind) {
    case hocon::Value::Kind::Object:
      return "an object";
    case hocon::Value::Kind::Array:
      return "a list";
    default:
      return "\"" + v.text + "\"";
  }
}

}  // namespace harbor::config

namespace harbor::config {

std::shared_ptr<const Config> merge_for_reload(const Config& running, const Config& fresh) {
  auto merged = std::make_shared<Config>(fresh);
  std::vector<std::string> warnings;
  for (const auto& row : schema()) {
    if (row.reloadable) continue;
    // Keys that need a restart keep their running value: it is shown as text and converted
    // back through the row, the same path a file value takes.
    Value value;
    value.kind = Value::Kind::Scalar;
    value.text = row.show(running);
    if (row.type == ValueType::StringList && value.text.size() >= 2 && value.text.front() == '[') {
      value.text = value.text.substr(1, value.text.size() - 2);
    }
    std::string key(row.key);
    auto typed = Converter(row, key, value, warnings).run();
    if (!typed) throw std::logic_error("merge_for_reload: " + typed.error().to_string());
    row.apply(*merged, *typed);
    auto& entries = merged->origins.entries;
    std::erase_if(entries, [&](const auto& e) { return e.first == key; });
    for (const auto& entry : running.origins.entries) {
      if (entry.first == key) entries.push_back(entry);
    }
  }
  keep_running_listeners(running, fresh, *merged);
  return merged;
}

}  // namespace harbor::config
