// NanoMQ's named listeners: reading, address clashes, reload diff and merge, docs.
#include "config/listeners.hpp"

#include <algorithm>
#include <array>

namespace harbor::config {
namespace {

constexpr std::array<std::string_view, 4> kSections = {"listeners.tcp", "listeners.ws",
                                                       "listeners.ssl", "listeners.wss"};
constexpr std::array<std::string_view, 4> kKindNames = {"tcp", "ws", "ssl", "wss"};

// `All` is NamedListeners, const or not.
template <class All>
auto& list_of(All& all, ListenerKind kind) {
  switch (kind) {
    case ListenerKind::Tcp:
      return all.tcp;
    case ListenerKind::Ws:
      return all.ws;
    case ListenerKind::Ssl:
      return all.ssl;
    case ListenerKind::Wss:
      break;
  }
  return all.wss;
}

std::string_view last_segment(std::string_view key) { return key.substr(key.rfind('.') + 1); }

bool is_address_key(std::string_view field) {
  return field == "bind" || field == "enable" || field == "enabled";
}

bool has_tls(ListenerKind kind) { return kind == ListenerKind::Ssl || kind == ListenerKind::Wss; }

// The schema row a key of a named listener of `kind` is read by: its unnamed section's row,
// and for wss the certificate keys of listeners.ssl (the unnamed wss has none of its own).
const SchemaRow* row_for(ListenerKind kind, std::string_view field) {
  std::string section(listener_section(kind));
  if (const SchemaRow* row = find_row(section + "." + std::string(field))) return row;
  if (kind == ListenerKind::Wss && !is_address_key(field)) {
    return find_row("listeners.ssl." + std::string(field));
  }
  return nullptr;
}

std::vector<std::string_view> fields_of(ListenerKind kind) {
  std::vector<std::string_view> out;
  for (const auto& row : schema()) {
    std::string_view section = row.key.substr(0, row.key.rfind('.'));
    std::string_view field = last_segment(row.key);
    if (section == listener_section(kind) ||
        (kind == ListenerKind::Wss && section == "listeners.ssl" && !is_address_key(field))) {
      out.push_back(field);
    }
  }
  return out;
}

// A Config whose unnamed listener sections hold what a named one starts from: enabled, no
// bind, no certificate.
Config named_scratch() {
  Config scratch;
  scratch.tcp = TcpListener{.enabled = true, .bind = ""};
  scratch.ws = WsListener{.enabled = true, .bind = "", .path = "/mqtt"};
  scratch.wss = WssListener{.enabled = true, .bind = "", .path = "/mqtt"};
  scratch.ssl = SslListener{};
  scratch.ssl.enabled = true;
  scratch.ssl.bind = "";
  return scratch;
}

tl::unexpected<ConfigError> error_at(const hocon::Origin& origin, std::string key,
                                     std::string message) {
  return tl::unexpected(ConfigError{origin.file, origin.line, std::move(key), std::move(message)});
}

// One listener's address for the clash check.
struct Address {
  std::string key;   // its bind key, "listeners.tcp.bind", "listeners.tcp.extra.bind"
  std::string bind;  // as configured, "host:port"
  std::string host;  // brackets removed
  std::string port;
};

Address address_of(std::string key, const std::string& bind) {
  Address a{std::move(key), bind, bind, ""};
  if (size_t colon = bind.rfind(':'); colon != std::string::npos) {
    a.host = bind.substr(0, colon);
    a.port = bind.substr(colon + 1);
  }
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  return a;
}

bool is_wildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

bool clash(const Address& a, const Address& b) {
  if (a.port != b.port || a.port == "0" || a.port.empty()) return false;
  return a.host == b.host || is_wildcard(a.host) || is_wildcard(b.host);
}

// Where `key` was set, as Config::key_error names it: "FILE:LINE" or "<defaults>".
std::string origin_of(const Config& config, std::string_view key) {
  for (const auto& [k, origin] : config.origins.entries) {
    if (k == key) return origin;
  }
  return "<defaults>";
}

ConfigError error_at_origin(const std::string& origin, std::string key, std::string message) {
  ConfigError e{origin, 0, std::move(key), std::move(message)};
  if (size_t colon = origin.rfind(':'); colon != std::string::npos && colon + 1 < origin.size()) {
    std::string_view digits = std::string_view(origin).substr(colon + 1);
    if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      e.file = origin.substr(0, colon);
      e.line = std::stoi(std::string(digits));
    }
  }
  return e;
}

std::string describe(const NamedListener& l) {
  if (!l.enabled) return "off";
  return std::string(listener_kind_name(l.kind)) + " " + l.bind + l.path;
}

const NamedListener* find_named(const Config& config, const NamedListener& like) {
  for (const auto& l : list_of(config.named_listeners, like.kind)) {
    if (l.key == like.key) return &l;
  }
  return nullptr;
}

// The certificate keys of `tls` as the listeners.ssl rows show them (key_password masked).
Config with_tls(const SslListener& tls) {
  Config c;
  c.ssl = tls;
  return c;
}

// `key` belongs to a named listener (is its section key or one of its keys).
bool belongs_to(std::string_view key, const NamedListener& l) {
  return key == l.key ||
         (key.starts_with(l.key) && key.size() > l.key.size() && key[l.key.size()] == '.');
}

}  // namespace

std::optional<ListenerKind> listener_kind_of(std::string_view section) {
  for (size_t i = 0; i < kSections.size(); ++i) {
    if (kSections[i] == section) return static_cast<ListenerKind>(i);
  }
  return std::nullopt;
}

std::string_view listener_section(ListenerKind kind) {
  return kSections[static_cast<size_t>(kind)];
}

std::string_view listener_kind_name(ListenerKind kind) {
  return kKindNames[static_cast<size_t>(kind)];
}

bool unnamed_listener_present(const hocon::Value& section) {
  if (!section.is_object() || section.fields.empty()) return true;
  return std::any_of(section.fields.begin(), section.fields.end(),
                     [](const auto& field) { return !field.value.is_object(); });
}

tl::expected<void, ConfigError> read_named_listener(ListenerKind kind, const std::string& name,
                                                    const hocon::Value& section, Config& config,
                                                    const ListenerReaderHooks& hooks) {
  NamedListener out;
  out.kind = kind;
  out.name = name;
  out.key = std::string(listener_section(kind)) + "." + name;
  hooks.record_origin(out.key, section.origin);
  Config scratch = named_scratch();
  std::string first_tls_key;  // the first certificate option set, for the wss rule below
  for (const auto& field : section.fields) {
    const std::string key = out.key + "." + field.key;
    const SchemaRow* row = row_for(kind, field.key);
    if (row == nullptr) {
      auto fields = fields_of(kind);
      return error_at(
          field.value.origin, key,
          "unknown key, did you mean " + out.key + "." + closest_of(field.key, fields) + "?");
    }
    if (auto applied = hooks.apply_row(*row, key, field.value, scratch); !applied) return applied;
    const std::string canonical = out.key + "." + std::string(last_segment(row->key));
    hooks.record_origin(canonical, field.value.origin);
    if (row->key.starts_with("listeners.ssl.") && !is_address_key(last_segment(row->key)) &&
        first_tls_key.empty()) {
      first_tls_key = canonical;
    }
  }
  switch (kind) {
    case ListenerKind::Tcp:
      out.enabled = scratch.tcp.enabled;
      out.bind = scratch.tcp.bind;
      break;
    case ListenerKind::Ws:
      out.enabled = scratch.ws.enabled;
      out.bind = scratch.ws.bind;
      out.path = scratch.ws.path;
      break;
    case ListenerKind::Ssl:
      out.enabled = scratch.ssl.enabled;
      out.bind = scratch.ssl.bind;
      out.tls = scratch.ssl;
      break;
    case ListenerKind::Wss:
      out.enabled = scratch.wss.enabled;
      out.bind = scratch.wss.bind;
      out.path = scratch.wss.path;
      out.tls = scratch.ssl;
      out.tls_from_ssl = out.tls.certfile.empty() && out.tls.keyfile.empty();
      break;
  }
  out.tls.enabled = out.enabled;
  out.tls.bind = out.bind;
  if (out.bind.empty()) {
    return error_at(section.origin, out.key + ".bind",
                    "a named listener needs its address: bind = \"host:port\"");
  }
  if (out.enabled && kind == ListenerKind::Ssl &&
      (out.tls.certfile.empty() || out.tls.keyfile.empty())) {
    return error_at(section.origin, out.key + (out.tls.certfile.empty() ? ".certfile" : ".keyfile"),
                    "a named TLS listener needs its own certfile and keyfile");
  }
  if (kind == ListenerKind::Wss && out.tls_from_ssl && !first_tls_key.empty()) {
    return error_at(section.origin, first_tls_key,
                    "a named wss listener without certfile and keyfile serves listeners.ssl's "
                    "certificate keys; give it its own certfile and keyfile to set this");
  }
  if (kind == ListenerKind::Wss && !out.tls_from_ssl &&
      (out.tls.certfile.empty() || out.tls.keyfile.empty())) {
    return error_at(section.origin, out.key + (out.tls.certfile.empty() ? ".certfile" : ".keyfile"),
                    "a named wss listener with a certificate of its own needs both certfile and "
                    "keyfile");
  }
  list_of(config.named_listeners, kind).push_back(std::move(out));
  return {};
}

std::vector<const NamedListener*> named_listeners_of(const Config& config) {
  std::vector<const NamedListener*> out;
  for (auto kind : {ListenerKind::Tcp, ListenerKind::Ws, ListenerKind::Ssl, ListenerKind::Wss}) {
    for (const auto& l : list_of(config.named_listeners, kind)) out.push_back(&l);
  }
  return out;
}

tl::expected<void, ConfigError> check_listener_addresses(const Config& config) {
  std::vector<Address> all;
  if (config.tcp.enabled) all.push_back(address_of("listeners.tcp.bind", config.tcp.bind));
  if (config.ws.enabled) all.push_back(address_of("listeners.ws.bind", config.ws.bind));
  if (config.ssl.enabled) all.push_back(address_of("listeners.ssl.bind", config.ssl.bind));
  if (config.wss.enabled) all.push_back(address_of("listeners.wss.bind", config.wss.bind));
  for (const NamedListener* l : named_listeners_of(config)) {
    if (l->enabled) all.push_back(address_of(l->key + ".bind", l->bind));
  }
  for (size_t j = 0; j < all.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      if (!clash(all[i], all[j])) continue;
      return tl::unexpected(error_at_origin(
          origin_of(config, all[j].key), all[j].key,
          "\"" + all[j].bind + "\" is also the address of " + all[i].key + " (\"" + all[i].bind +
              "\", " + origin_of(config, all[i].key) + "); two listeners cannot share an address"));
    }
  }
  return {};
}

void diff_named_listeners(const Config& before, const Config& after, std::vector<KeyChange>& out) {
  for (const NamedListener* old_one : named_listeners_of(before)) {
    const NamedListener* new_one = find_named(after, *old_one);
    if (new_one == nullptr) {
      out.push_back(KeyChange{old_one->key, describe(*old_one), "removed", false});
      continue;
    }
    if (describe(*old_one) != describe(*new_one)) {
      out.push_back(KeyChange{old_one->key, describe(*old_one), describe(*new_one), false});
    }
    if (!has_tls(old_one->kind)) continue;
    const Config old_tls = with_tls(old_one->tls);
    const Config new_tls = with_tls(new_one->tls);
    for (const auto& row : schema()) {
      if (!row.key.starts_with("listeners.ssl.") || !row.reloadable) continue;
      std::string old_value = row.show(old_tls);
      std::string new_value = row.show(new_tls);
      if (old_value == new_value) continue;
      out.push_back(KeyChange{old_one->key + "." + std::string(last_segment(row.key)),
                              std::move(old_value), std::move(new_value), true});
    }
  }
  for (const NamedListener* new_one : named_listeners_of(after)) {
    if (find_named(before, *new_one) == nullptr) {
      out.push_back(KeyChange{new_one->key, "none", describe(*new_one), false});
    }
  }
}

void keep_running_listeners(const Config& running, const Config& fresh, Config& merged) {
  merged.named_listeners = running.named_listeners;
  std::vector<const NamedListener*> in_both;
  for (auto kind : {ListenerKind::Ssl, ListenerKind::Wss}) {
    for (auto& l : list_of(merged.named_listeners, kind)) {
      const NamedListener* f = find_named(fresh, l);
      if (f == nullptr) continue;
      l.tls = f->tls;
      l.tls.enabled = l.enabled;
      l.tls.bind = l.bind;
      l.tls_from_ssl = f->tls_from_ssl;
      in_both.push_back(&l);
    }
  }
  auto any_named = [&](std::string_view key) {
    for (const Config* c : {&running, &fresh}) {
      for (const NamedListener* l : named_listeners_of(*c)) {
        if (belongs_to(key, *l)) return true;
      }
    }
    return false;
  };
  // A certificate key of a listener that stays: where the file that is applied set it.
  auto fresh_tls_key = [&](std::string_view key) {
    return std::any_of(in_both.begin(), in_both.end(), [&](const NamedListener* l) {
      return belongs_to(key, *l) && key != l->key && !is_address_key(last_segment(key));
    });
  };
  auto& entries = merged.origins.entries;
  std::erase_if(entries,
                [&](const auto& e) { return any_named(e.first) && !fresh_tls_key(e.first); });
  for (const auto& entry : running.origins.entries) {
    if (any_named(entry.first) && !fresh_tls_key(entry.first)) entries.push_back(entry);
  }
}

std::string render_listeners_markdown() {
  return "\n## Named listeners\n"
         "\n"
         "As in NanoMQ, more listeners of each kind may be added by name beside the unnamed\n"
         "one: `listeners.tcp.<name> { bind = ... }`, `listeners.ws.<name>`,\n"
         "`listeners.ssl.<name>` and `listeners.wss.<name>`. Each is served exactly like the\n"
         "unnamed listener of its kind and takes that section's keys (`enable`, `bind`; for ssl\n"
         "`keyfile`, `certfile`, `cacertfile`, `key_password`, `verify_peer`,\n"
         "`fail_if_no_peer_cert`, `use_cn_as_username`; for wss the same certificate keys). A\n"
         "named listener is on unless `enable = false`, and `bind` is required.\n"
         "\n"
         "- A named ssl listener has its own certificate keys (`certfile` and `keyfile` are\n"
         "  required); it does not inherit listeners.ssl's.\n"
         "- A named wss listener that sets neither `certfile` nor `keyfile` serves\n"
         "  listeners.ssl's certificate keys, as the unnamed wss does; setting another\n"
         "  certificate key in it without a certificate is an error. With `certfile` and\n"
         "  `keyfile` it uses only its own keys.\n"
         "- A `listeners.<kind>` section that holds only named listeners does not switch the\n"
         "  unnamed listener of that kind on.\n"
         "- No two enabled listeners, named or not, may share an address (the same host and\n"
         "  port, or the same port with `0.0.0.0` or `::`): the file is refused, naming both\n"
         "  keys. Port 0 (any free port) never clashes.\n"
         "- Reload: the certificate keys of named ssl and wss listeners are re-read like\n"
         "  listeners.ssl's (a certificate that cannot be used refuses the whole reload).\n"
         "  Adding or removing a named listener, or changing its `bind` or `enable`, needs a\n"
         "  restart; `harbormq reload` names it under \"needs a restart\".\n";
}

}  // namespace harbor::config
