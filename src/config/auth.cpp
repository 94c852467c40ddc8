// Reading `auth {}` (docs/configuration.md, "Authentication and ACL").
#include "config/auth.hpp"

#include <arpa/inet.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/schema.hpp"
#include "config/units.hpp"
#include "config/value_readers.hpp"

namespace harbor::config {
namespace {

using hocon::Value;
using Result = tl::expected<void, ConfigError>;
using namespace readers;  // NOLINT(google-build-using-namespace): this file's own vocabulary

constexpr size_t kMaxPasswordFileBytes = 16u << 20;
constexpr int64_t kMaxCacheSize = 65535;

std::string suggest(std::string_view key, std::initializer_list<std::string_view> candidates) {
  std::vector<std::string_view> list(candidates);
  return closest_of(key, list);
}

template <typename T>
Result set(T& out, tl::expected<T, ConfigError> v) {
  if (!v) return tl::unexpected(v.error());
  out = std::move(*v);
  return {};
}

// A path in the file is relative to that file's directory, as includes are.
std::string resolve_path(const Value& v, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute() || v.origin.file.empty() || v.origin.file.front() == '<') return path;
  return (std::filesystem::path(v.origin.file).parent_path() / p).string();
}

tl::expected<std::string, ConfigError> read_whole_file(const Value& v, const std::string& key,
                                                       const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return error_at(v, key, "cannot read \"" + path + "\": " + ec.message());
  if (size > kMaxPasswordFileBytes) {
    return error_at(v, key, "\"" + path + "\" is larger than 16 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) return error_at(v, key, "cannot read \"" + path + "\"");
  return text.str();
}

bool valid_ip_range(std::string_view text) {
  std::string addr(text.substr(0, text.find('/')));
  unsigned char buf[16];
  int max_bits = 0;
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    max_bits = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    max_bits = 128;
  } else {
    return false;
  }
  if (text.find('/') == std::string_view::npos) return true;
  auto bits = parse_integer(text.substr(text.find('/') + 1));
  return bits && *bits >= 0 && *bits <= max_bits;
}

class AuthReader {
 public:
  AuthReader(Config& config, const BridgeReaderHooks& hooks) : config_(config), hooks_(hooks) {}

  Result read(const Value& auth) {
    if (!auth.is_object())
      return error_at(auth, "auth", "is a section: expected { ... }, got " + describe_value(auth));
    AuthSettings& a = config_.auth;
    a = AuthSettings{};
    a.present = true;
    for (const auto& f : auth.fields) {
      const std::string key = "auth." + f.key;
      const Value& v = f.value;
      Result r;
      if (f.key == "allow_anonymous") {
        r = set(a.allow_anonymous, as_bool(v, key));
      } else if (f.key == "no_match") {
        r = choice(v, key, "allow", "deny", a.no_match_allow);
      } else if (f.key == "deny_action") {
        bool ignore = true;
        r = choice(v, key, "ignore", "disconnect", ignore);
        a.deny_disconnect = !ignore;
      } else if (f.key == "password") {
        r = read_password(v, key);
      } else if (f.key == "password_file") {
        r = read_password_file(v, key);
      } else if (f.key == "acl") {
        r = read_acl(v, key);
      } else if (f.key == "cache") {
        r = read_cache(v, key);
      } else if (f.key == "http_auth") {
        r = read_http_auth(v, key);
      } else {
        return error_at(
            v, key,
            "unknown key, did you mean auth." +
                suggest(f.key, {"allow_anonymous", "no_match", "deny_action", "password",
                                "password_file", "acl", "cache", "http_auth"}) +
                "?");
      }
      if (!r) return r;
      hooks_.record_origin(key, v.origin);
    }
    return {};
  }

 private:
  Result read_http_auth(const Value& v, const std::string& key) {
    if (!v.is_object())
      return error_at(v, key, "is a section: expected { ... }, got " + describe_value(v));
    HttpAuthSettings& h = config_.auth.http;
    h = HttpAuthSettings{};
    h.present = true;
    for (const auto& f : v.fields) {
      const std::string k = key + "." + f.key;
      Result r;
      if (f.key == "auth_req") {
        r = read_http_request(f.value, k, h.auth_req);
      } else if (f.key == "super_req") {
        r = read_http_request(f.value, k, h.super_req);
      } else if (f.key == "acl_req") {
        r = read_http_request(f.value, k, h.acl_req);
      } else if (f.key == "timeout") {
        r = set(h.timeout, as_duration(f.value, k, 1000, 1, 600'000));
      } else if (f.key == "connect_timeout") {
        r = set(h.connect_timeout, as_duration(f.value, k, 1000, 1, 600'000));
      } else if (f.key == "cache_ttl") {
        r = set(h.cache_ttl, as_duration(f.value, k, 1000, 0, 86'400'000));
      } else if (f.key == "pool_size") {
        auto n = as_integer(f.value, k, 1, 1024);
        if (!n) return tl::unexpected(n.error());
        h.pool_size = static_cast<uint32_t>(*n);
      } else if (f.key == "enable") {
        auto on = as_bool(f.value, k);
        if (!on) return tl::unexpected(on.error());
        h.present = *on;
      } else {
        return error_at(
            f.value, k,
            "unknown key, did you mean " + key + "." +
                suggest(f.key, {"auth_req", "super_req", "acl_req", "timeout", "connect_timeout",
                                "pool_size", "cache_ttl", "enable"}) +
                "?");
      }
      if (!r) return r;
      hooks_.record_origin(k, f.value.origin);
    }
    if (h.present && !h.auth_req.present)
      return error_at(v, key, "needs auth_req { url = \"http://...\" }");
    return {};
  }

  // tls { cacertfile, certfile, keyfile }: each file must be readable now (a path that is
  // wrong is this file's error, not a refused CONNECT later).
  static Result read_http_tls(const Value& v, const std::string& key, HttpRequestSettings& out) {
    if (!v.is_object())
      return error_at(v, key,
                      "is a section: expected { cacertfile = ... }, got " + describe_value(v));
    for (const auto& f : v.fields) {
      const std::string k = key + "." + f.key;
      std::string* into = f.key == "cacertfile" ? &out.cacertfile
                          : f.key == "certfile" ? &out.certfile
                          : f.key == "keyfile"  ? &out.keyfile
                                                : nullptr;
      if (into == nullptr)
        return error_at(f.value, k,
                        "unknown key, did you mean " + key + "." +
                            suggest(f.key, {"cacertfile", "certfile", "keyfile"}) + "?");
      auto path = as_string(f.value, k);
      if (!path) return tl::unexpected(path.error());
      if (!std::ifstream(*path).good())
        return error_at(f.value, k, "cannot read \"" + *path + "\"");
      *into = *path;
    }
    if (out.certfile.empty() != out.keyfile.empty())
      return error_at(v, key, "certfile and keyfile go together");
    return {};
  }

  static Result read_http_request(const Value& v, const std::string& key,
                                  HttpRequestSettings& out) {
    if (!v.is_object())
      return error_at(v, key, "is a section: expected { url = ... }, got " + describe_value(v));
    out = HttpRequestSettings{};
    out.present = true;
    for (const auto& f : v.fields) {
      const std::string k = key + "." + f.key;
      if (f.key == "url") {
        auto url = as_string(f.value, k);
        if (!url) return tl::unexpected(url.error());
        const bool https = url->starts_with("https://");
        if (!(https ? url->size() > 8 : url->starts_with("http://") && url->size() > 7))
          return error_at(
              f.value, k,
              "expected an http:// or https://host:port/path URL, got \"" + *url + "\"");
        out.url = *url;
      } else if (f.key == "method") {
        auto m = as_string(f.value, k);
        if (!m) return tl::unexpected(m.error());
        const std::string t = lower(*m);
        if (t != "post" && t != "get")
          return error_at(f.value, k, "expected post or get, got \"" + *m + "\"");
        out.post = t == "post";
      } else if (f.key == "headers") {
        if (!f.value.is_object())
          return error_at(f.value, k, "expected { name = value }, got " + describe_value(f.value));
        for (const auto& hf : f.value.fields) {
          auto hv = as_string(hf.value, k + "." + hf.key);
          if (!hv) return tl::unexpected(hv.error());
          if (hf.key.empty() || hf.key.find_first_of(": \r\n") != std::string::npos ||
              hv->find_first_of("\r\n") != std::string::npos)
            return error_at(hf.value, k + "." + hf.key, "not a valid HTTP header");
          out.headers.emplace_back(lower(hf.key), *hv);
        }
      } else if (f.key == "params") {
        if (!f.value.is_object())
          return error_at(f.value, k,
                          "expected { name = \"%u\" ... }, got " + describe_value(f.value));
        for (const auto& pf : f.value.fields) {
          auto pv = as_string(pf.value, k + "." + pf.key);
          if (!pv) return tl::unexpected(pv.error());
          out.params.emplace_back(pf.key, *pv);
        }
      } else if (f.key == "tls" || f.key == "ssl") {
        if (auto r = read_http_tls(f.value, k, out); !r) return r;
      } else {
        return error_at(f.value, k,
                        "unknown key, did you mean " + key + "." +
                            suggest(f.key, {"url", "method", "headers", "params"}) + "?");
      }
    }
    if (out.url.empty()) return error_at(v, key + ".url", "is required");
    if (!out.url.starts_with("https://") &&
        !(out.cacertfile.empty() && out.certfile.empty() && out.keyfile.empty()))
      return error_at(v, key + ".tls", "is for an https:// url; url is \"" + out.url + "\"");
    for (const auto& [name, value] : out.headers) {
      if (name == "content-type" && lower(value) != "application/x-www-form-urlencoded" &&
          lower(value) != "application/json")
        return error_at(v, key + ".headers.content-type",
                        "expected application/x-www-form-urlencoded or application/json");
    }
    return {};
  }

  // `first` → true, `second` → false.
  static Result choice(const Value& v, const std::string& key, std::string_view first,
                       std::string_view second, bool& out) {
    if (v.kind == Value::Kind::Scalar) {
      const std::string t = lower(v.text);
      if (t == first || t == second) {
        out = t == first;
        return {};
      }
    }
    return error_at(v, key,
                    "expected " + std::string(first) + " or " + std::string(second) + ", got " +
                        describe_value(v));
  }

  void add_password(std::string user, std::string secret) {
    auto& list = config_.auth.passwords;
    for (auto& [u, s] : list) {
      if (u == user) {
        s = std::move(secret);
        return;
      }
    }
    list.emplace_back(std::move(user), std::move(secret));
  }

  // NanoMQ: `password = {include "nanomq_pwd.conf"}` ("user": "password" fields), or a path
  // to such a file.
  Result read_password(const Value& v, const std::string& key) {
    if (v.kind == Value::Kind::Scalar) {
      const std::string path = resolve_path(v, v.text);
      std::vector<std::string> warnings;
      auto parsed = hocon::parse_file(path, 0, warnings);
      if (!parsed) return tl::unexpected(parsed.error());
      return read_password_object(*parsed, key, path);
    }
    if (!v.is_object()) {
      return error_at(v, key,
                      "expected { \"user\": \"password\" } (or {include \"file\"}, or a file's "
                      "path), got " +
                          describe_value(v));
    }
    return read_password_object(v, key, "");
  }

  Result read_password_object(const Value& object, const std::string& key,
                              const std::string& path) {
    config_.auth.check_users = true;
    if (object.is_object() && object.fields.empty()) {
      // Most likely an include whose file was not found (a warning said so). Users are still
      // checked: with none, every client that gives a user name is refused.
      hooks_.warn_once(key, object.origin,
                       "names no user" + (path.empty() ? std::string() : " (\"" + path + "\")") +
                           " (is the included file missing?): every client that gives a user "
                           "name is refused");
      return {};
    }
    if (!object.is_object()) {
      return error_at(object, key,
                      "expected \"user\": \"password\" fields, got " + describe_value(object));
    }
    for (const auto& f : object.fields) {
      const std::string user_key = key + "." + f.key;
      if (f.value.kind != Value::Kind::Scalar) {
        return error_at(f.value, user_key,
                        "expected the user's password, got " + describe_value(f.value));
      }
      if (f.key.empty()) return error_at(f.value, user_key, "a user name must not be empty");
      add_password(f.key, f.value.text);
    }
    return {};
  }

  // Ours: Mosquitto's password file, `user:secret` lines (mosquitto_passwd writes $7$ hashes);
  // blank lines and lines starting with '#' are skipped.
  Result read_password_file(const Value& v, const std::string& key) {
    auto name = as_string(v, key);
    if (!name) return tl::unexpected(name.error());
    const std::string path = resolve_path(v, *name);
    auto text = read_whole_file(v, key, path);
    if (!text) return tl::unexpected(text.error());
    config_.auth.password_file = path;
    config_.auth.check_users = true;
    std::istringstream lines(*text);
    std::string line;
    int number = 0;
    size_t users = 0;
    while (std::getline(lines, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.front() == '#') continue;
      const size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0) {
        return tl::unexpected(ConfigError{path, number, key,
                                          "expected user:password_hash (as mosquitto_passwd "
                                          "writes it)"});
      }
      add_password(line.substr(0, colon), line.substr(colon + 1));
      ++users;
    }
    if (users == 0) {
      return error_at(v, key, "\"" + path + "\" names no user");
    }
    return {};
  }

  // NanoMQ: `acl = {include "nanomq_acl.conf"}` (a `rules = [...]` list), or a path.
  Result read_acl(const Value& v, const std::string& key) {
    if (v.kind == Value::Kind::Scalar) {
      const std::string path = resolve_path(v, v.text);
      std::vector<std::string> warnings;
      auto parsed = hocon::parse_file(path, 0, warnings);
      if (!parsed) return tl::unexpected(parsed.error());
      if (auto r = hocon::resolve(*parsed); !r) return r;
      return read_acl_object(*parsed, key);
    }
    if (!v.is_object()) {
      return error_at(v, key,
                      "expected { rules = [...] } (or {include \"file\"}, or a file's path), got " +
                          describe_value(v));
    }
    return read_acl_object(v, key);
  }

  Result read_acl_object(const Value& object, const std::string& key) {
    const Value* rules = nullptr;
    for (const auto& f : object.fields) {
      if (f.key != "rules") {
        return error_at(f.value, key + "." + f.key, "unknown key, did you mean " + key + ".rules?");
      }
      rules = &f.value;
    }
    if (rules == nullptr) {
      hooks_.warn_once(key, object.origin,
                       "has no rules (is the included file missing?): auth.no_match decides "
                       "every publish and subscribe");
      config_.auth.acl_rules.clear();
      return {};
    }
    if (rules->kind != Value::Kind::Array) {
      return error_at(*rules, key + ".rules",
                      "expected a list of rules, got " + describe_value(*rules));
    }
    auto& out = config_.auth.acl_rules;
    out.clear();
    for (size_t i = 0; i < rules->items.size(); ++i) {
      AclRuleSettings rule;
      if (auto r = read_rule(rules->items[i], key + ".rules[" + std::to_string(i) + "]", rule); !r)
        return r;
      out.push_back(std::move(rule));
    }
    return {};
  }

  static Result read_who_field(const hocon::Field& f, const std::string& key, AclWhoSettings& who,
                               bool& known) {
    known = true;
    if (f.key == "username") return set(who.username, optional_string(f.value, key));
    if (f.key == "clientid") return set(who.clientid, optional_string(f.value, key));
    if (f.key == "ipaddr") {
      auto s = as_string(f.value, key);
      if (!s) return tl::unexpected(s.error());
      if (!valid_ip_range(*s)) {
        return error_at(f.value, key,
                        "expected an address or network (10.0.0.0/8, ::1), got \"" + *s + "\"");
      }
      who.ipaddr = *s;
      return {};
    }
    known = false;
    return {};
  }

  static tl::expected<std::optional<std::string>, ConfigError> optional_string(
      const Value& v, const std::string& key) {
    auto s = as_string(v, key);
    if (!s) return tl::unexpected(s.error());
    return std::optional<std::string>(*s);
  }

  static Result read_conditions(const Value& list, const std::string& key,
                                std::vector<AclWhoSettings>& out) {
    if (list.kind != Value::Kind::Array || list.items.empty()) {
      return error_at(list, key,
                      "expected a list of { username = ..., clientid = ..., ipaddr = ... }, got " +
                          describe_value(list));
    }
    for (size_t i = 0; i < list.items.size(); ++i) {
      const Value& item = list.items[i];
      const std::string item_key = key + "[" + std::to_string(i) + "]";
      if (!item.is_object() || item.fields.empty()) {
        return error_at(item, item_key,
                        "expected { username = ..., clientid = ..., ipaddr = ... }");
      }
      AclWhoSettings who;
      for (const auto& f : item.fields) {
        bool known = false;
        if (auto r = read_who_field(f, item_key + "." + f.key, who, known); !r) return r;
        if (!known) {
          return error_at(f.value, item_key + "." + f.key,
                          "unknown key, did you mean " + item_key + "." +
                              suggest(f.key, {"username", "clientid", "ipaddr"}) + "?");
        }
      }
      out.push_back(std::move(who));
    }
    return {};
  }

  static Result read_rule(const Value& object, const std::string& key, AclRuleSettings& rule) {
    if (!object.is_object()) {
      return error_at(object, key,
                      "expected { \"permit\": \"allow\", ... }, got " + describe_value(object));
    }
    AclWhoSettings direct;
    bool have_direct = false, have_permit = false, have_and = false, have_or = false;
    for (const auto& f : object.fields) {
      const std::string fkey = key + "." + f.key;
      const Value& v = f.value;
      Result r;
      bool known = false;
      if (auto w = read_who_field(f, fkey, direct, known); !w) return w;
      if (known) {
        have_direct = true;
        continue;
      }
      if (f.key == "permit") {
        r = choice(v, fkey, "allow", "deny", rule.allow);
        have_permit = true;
      } else if (f.key == "action") {
        r = read_action(v, fkey, rule.actions);
      } else if (f.key == "topics") {
        r = read_topics(v, fkey, rule.topics);
      } else if (f.key == "and") {
        r = read_conditions(v, fkey, rule.who);
        have_and = true;
      } else if (f.key == "or") {
        r = read_conditions(v, fkey, rule.who);
        rule.any = true;
        have_or = true;
      } else {
        return error_at(v, fkey,
                        "unknown key, did you mean " + key + "." +
                            suggest(f.key, {"permit", "action", "topics", "username", "clientid",
                                            "ipaddr", "and", "or"}) +
                            "?");
      }
      if (!r) return r;
    }
    if (!have_permit) return error_at(object, key + ".permit", "required (allow or deny)");
    if (have_and && have_or) return error_at(object, key, "give `and` or `or`, not both");
    if (have_or && have_direct) {
      return error_at(object, key,
                      "username/clientid/ipaddr beside `or`: put them inside the `or` list");
    }
    if (have_direct) rule.who.push_back(std::move(direct));  // one more condition, all must hold
    return {};
  }

  static Result read_action(const Value& v, const std::string& key, uint8_t& actions) {
    if (v.kind == Value::Kind::Scalar) {
      const std::string t = lower(v.text);
      if (t == "publish") actions = 1;
      if (t == "subscribe") actions = 2;
      if (t == "pubsub") actions = 3;
      if (t == "publish" || t == "subscribe" || t == "pubsub") return {};
    }
    return error_at(v, key, "expected publish, subscribe or pubsub, got " + describe_value(v));
  }

  static Result read_topics(const Value& v, const std::string& key, std::vector<std::string>& out) {
    if (v.kind != Value::Kind::Array) {
      return error_at(v, key, "expected a list of topic filters, got " + describe_value(v));
    }
    for (size_t i = 0; i < v.items.size(); ++i) {
      auto t = as_filter(v.items[i], key + "[" + std::to_string(i) + "]");
      if (!t) return tl::unexpected(t.error());
      out.push_back(std::move(*t));
    }
    if (out.empty())
      return error_at(v, key, "an empty list matches nothing; leave `topics` out for every topic");
    return {};
  }

  Result read_cache(const Value& v, const std::string& key) {
    if (!v.is_object())
      return error_at(
          v, key, "is a section: expected { max_size = 32, ttl = 1m }, got " + describe_value(v));
    for (const auto& f : v.fields) {
      const std::string fkey = key + "." + f.key;
      Result r;
      if (f.key == "max_size") {
        auto n = as_integer(f.value, fkey, 0, kMaxCacheSize);
        if (n) config_.auth.cache_max_size = static_cast<uint32_t>(*n);
        r = n ? Result{} : tl::unexpected(n.error());
      } else if (f.key == "ttl") {
        r = set(config_.auth.cache_ttl, as_duration(f.value, fkey, 1000, 0, 86'400'000));
      } else {
        return error_at(
            f.value, fkey,
            "unknown key, did you mean " + key + "." + suggest(f.key, {"max_size", "ttl"}) + "?");
      }
      if (!r) return r;
    }
    return {};
  }

  Config& config_;
  const BridgeReaderHooks& hooks_;
};

}  // namespace

tl::expected<void, ConfigError> read_auth(const hocon::Value& auth, Config& config,
                                          const BridgeReaderHooks& hooks) {
  return AuthReader(config, hooks).read(auth);
}

std::string render_auth_markdown() {
  return R"(
## Authentication and ACL

`auth {}` is NanoMQ's section, read as NanoMQ documents it; its files (`nanomq_pwd.conf`,
`nanomq_acl.conf`) are read unchanged, and so is Mosquitto's password file. Without an
`auth` section anyone may connect, publish and subscribe. The whole section is reloadable
(`harbormq reload`): its files are read again, and connections already open follow the
new ACL from their next publish or subscribe (a new password file applies to new
connections).

| Key | Type | Default | Origin | Description |
|---|---|---|---|---|
| `auth.allow_anonymous` | boolean | `true` | NanoMQ | Clients that give no user name may connect. A client that gives one is checked against the password file when there is one; with no password file it counts as anonymous. Refused: CONNACK 0x05 (3.1.1) / 0x87 (5.0). |
| `auth.password` | object, or a file's path | none | NanoMQ | Users and passwords: `{include "nanomq_pwd.conf"}` (lines `"user": "password"`), the same fields inline, or the path of such a file. A value may be plain text or a Mosquitto hash (`$7$...` PBKDF2-SHA512, `$6$...` SHA-512; `harbormq passwd` writes them). An unknown user or a wrong password is refused: CONNACK 0x04 (3.1.1) / 0x86 (5.0). An include that names no user (a missing file) is warned, and then every client that gives a user name is refused. |
| `auth.password_file` | path | none | ours | Mosquitto's password file (`user:hash` lines, as `mosquitto_passwd` and `harbormq passwd` write them), read as it is; with `password`, a user in both keeps this file's entry. |
| `auth.acl` | object, or a file's path | none | NanoMQ | `{include "nanomq_acl.conf"}` (a `rules = [...]` list), the list inline as `{ rules = [...] }`, or the path of such a file. No rules: `no_match` decides everything. |
| `auth.no_match` | `allow` or `deny` | `allow` | NanoMQ | What happens to a publish or subscribe no rule matched. |
| `auth.deny_action` | `ignore` or `disconnect` | `ignore` | NanoMQ | `ignore`: a denied PUBLISH is discarded (5.0: PUBACK/PUBREC 0x87; 3.1.1 cannot refuse, so it is acknowledged and dropped), a denied SUBSCRIBE filter gets 0x80 (3.1.1) / 0x87 (5.0). `disconnect`: the connection is closed (5.0: DISCONNECT 0x87 first). |
| `auth.cache.max_size` | integer 0–65535 | `32` | NanoMQ | Publish decisions remembered per connection (by topic); 0 = none. |
| `auth.cache.ttl` | duration | `1m` | NanoMQ | How long an `http_auth.acl_req` answer holds for a connection (`max_size` answers at most; 0 = every publish asks). File rules change only on reload, which clears every cache, so their entries do not expire. |
| `auth.http_auth` | section | none | NanoMQ | An HTTP server decides the CONNECTs the password file does not accept, and with `acl_req` each publish and subscribe (see below). |

### ACL rules

Rules are tried in file order; the first that matches decides (`permit`). A rule has:

| Field | Meaning |
|---|---|
| `permit` | `allow` or `deny` (required). |
| `action` | `publish`, `subscribe` or `pubsub` (the default). |
| `topics` | Topic filters; left out, the rule is for every topic. `%u` / `${username}` and `%c` / `${clientid}` are replaced by the client's user name and client id; a topic whose placeholder the client cannot fill (no user name; a value holding `/`, `+` or `#`) is left out of the rule for that client. |
| `username`, `clientid` | The client's user name / client id, exactly; `"#"` matches every client, with or without a user name. |
| `ipaddr` | The client's address, or a network: `"192.168.1.0/24"`, `"::1"`. |
| `and`, `or` | A list of `{ username, clientid, ipaddr }` conditions: all of them / any of them. `username`, `clientid` and `ipaddr` beside `and` are one more condition. |

A publish matches a rule when one of its filters matches the topic. A subscription matches an
`allow` rule when one of its filters covers every topic the subscribed filter can match
(`sensors/#` allows `sensors/+/temp`, not `#`), and a `deny` rule when the two filters can
match a common topic (`deny sensors/secret` refuses a subscription to `sensors/#`). A shared
subscription is checked by the filter inside `$share/<group>/`. Topics starting with `$`
follow MQTT's rule: a filter starting with `+` or `#` does not match them. A client's will is
checked as a publish at CONNECT (denied: CONNACK 0x05 / 0x87).

### HTTP authentication (`auth.http_auth`)

NanoMQ's keys: `auth_req { url, method = post | get, headers { name = value }, params {
name = "%u" ... } }`, `super_req { ... }` likewise, `timeout` (5 s, the whole request),
`connect_timeout` (5 s), `pool_size` (32 requests in flight), `cache_ttl` (0 s: answers are
remembered that long, ours for `auth_req`), `enable`. Placeholders in `params`: `%u` user
name, `%c` client id, `%a` client address, `%r` protocol level (3, 4, 5), `%P` password;
`%p` the port of the listener the client came in on, `%C` and `%d` a TLS client's verified
certificate's CN and subject (empty without one). With `get`
the params go in the query string; with `post` in the body, form-encoded or, with
`headers.content-type = "application/json"`, as a JSON object. `https://` URLs are verified
(certificate chain and host name) against `tls { cacertfile = "..." }` in the request's
section, or the system's CAs without it; `certfile` and `keyfile` there give a client
certificate (NanoMQ's keys; each file must be readable at load). Redirects are not followed.

A user the password file accepts is not asked about. Otherwise, with a user name or with
`allow_anonymous = true`, `auth_req` decides: 200 lets the client in, 4xx refuses it with
CONNACK 0x04 / 0x86, and anything else (5xx, a refused connection, no answer within
`timeout`, more than 8,192 requests waiting) refuses it with 0x03 / 0x88 "server
unavailable", so clients retry later. After a 200, `super_req` (when given) is asked: 200
makes the client a superuser that no ACL rule applies to. Requests run on a thread of their
own: a slow server delays only the clients waiting for it, and what such a client sends
behind its CONNECT waits for the answer, unread, and is handled after it.

`acl_req { url, method, headers, params }` (NanoMQ's keys; NanoMQ itself does not act on
them) asks about each PUBLISH topic and each SUBSCRIBE filter (a shared subscription's
filter inside `$share/<group>/`), with the placeholders above plus `%A` (1 subscribe, 2
publish), `%t` the topic or filter and `%m` (mount point: empty). 200 allows, 4xx denies
(as an `auth.acl` denial: `deny_action`, PUBACK/PUBREC 0x87, SUBACK 0x80 / 0x87); no answer
leaves it to `auth.no_match`, logged once per shard. A publish or subscribe must be allowed
by both `auth.acl` (when it has rules) and `acl_req`; a superuser (`super_req`) is asked
about nothing. Answers are kept per connection for `auth.cache.ttl`, at most
`auth.cache.max_size` of them (a reload forgets them all); `cache_ttl` above also applies.
While a question is out, the client's next packets wait unread, so its packets keep their
order; other clients are not delayed. A will's topic is checked against `auth.acl` only.

### MQTT 5 enhanced authentication: SCRAM-SHA-256

An MQTT 5 client may prove its password without sending it: CONNECT with Authentication
Method `SCRAM-SHA-256` and the client-first-message as Authentication Data, then AUTH 0x18
both ways (RFC 5802, RFC 7677: 4096 iterations, no channel binding), and CONNACK carries the
server-final-message, so the client knows the broker has the password too. AUTH 0x19 on a
connected client re-authenticates (same method and user; a failure ends the connection with
DISCONNECT 0x87). The user must be in `auth.password` with a plain-text password (a hash
cannot give SCRAM its key); a wrong password, an unknown user and a hashed entry all end in
CONNACK 0x86 after the same exchange, and the log says which. The ACL sees the proven user
as `%u`; a CONNECT User Name, if given as well, must be the same user. Without
`auth.password` or with another method, CONNECT gets 0x8C (bad authentication method). An
exchange not finished within `mqtt.connect_timeout` is closed.
)";
}

std::string describe_auth(const Config& config) {
  const AuthSettings& a = config.auth;
  if (!a.present) return "none";
  return std::string("allow_anonymous ") + (a.allow_anonymous ? "true" : "false") + ", " +
         std::to_string(a.passwords.size()) + " user(s), " + std::to_string(a.acl_rules.size()) +
         " ACL rule(s), no_match " + (a.no_match_allow ? "allow" : "deny") + ", deny_action " +
         (a.deny_disconnect ? "disconnect" : "ignore");
}

}  // namespace harbor::config
