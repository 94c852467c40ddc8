// The `auth {}` section: NanoMQ's keys (allow_anonymous, no_match, deny_action, password,
// acl, cache, http_auth) plus ours (password_file: Mosquitto's password file format), as
// read by config/auth.cpp. Plain data; the broker's own form is built by app.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace harbor::config {

// Who an ACL rule is for; every field given must match ("#": every client).
struct AclWhoSettings {
  std::optional<std::string> username;
  std::optional<std::string> clientid;
  std::optional<std::string> ipaddr;  // "a.b.c.d", "a.b.c.d/n", IPv6 likewise (checked)
  bool operator==(const AclWhoSettings&) const = default;
};

struct AclRuleSettings {
  bool allow = true;                // permit = allow | deny
  uint8_t actions = 3;              // 1 publish, 2 subscribe, 3 pubsub (the default)
  bool any = false;                 // `or` (any condition) rather than `and` / plain fields (all)
  std::vector<AclWhoSettings> who;  // empty: every client
  std::vector<std::string> topics;  // empty: every topic
  bool operator==(const AclRuleSettings&) const = default;
};

// One request of http_auth (auth_req, super_req, acl_req): NanoMQ's keys.
struct HttpRequestSettings {
  bool present = false;
  std::string url;   // http://host:port/path or https://...
  bool post = true;  // method = post | get
  // Header name (lower case) → value; content-type is application/x-www-form-urlencoded
  // unless given (application/json is the other one understood).
  std::vector<std::pair<std::string, std::string>> headers;
  // Parameter → template with %u %c %a %r %P %p %C %d, and for acl_req %A %t %m, in file
  // order.
  std::vector<std::pair<std::string, std::string>> params;
  // https: `tls { cacertfile, certfile, keyfile }` (NanoMQ's keys): the CAs the server's
  // certificate must chain to ("" = the system's), and a client certificate and key.
  std::string cacertfile;
  std::string certfile;
  std::string keyfile;
  bool operator==(const HttpRequestSettings&) const = default;
};

struct HttpAuthSettings {
  bool present = false;
  HttpRequestSettings auth_req;
  HttpRequestSettings super_req;
  HttpRequestSettings acl_req;  // asked for each (access, topic) not in the client's cache
  std::chrono::milliseconds timeout{5'000};          // the whole request
  std::chrono::milliseconds connect_timeout{5'000};  // its TCP connect
  uint32_t pool_size = 32;                           // requests in flight at once
  std::chrono::milliseconds cache_ttl{0};  // answers remembered; 0 = none (ours for auth_req)
  bool operator==(const HttpAuthSettings&) const = default;
};

struct AuthSettings {
  bool present = false;  // an auth {} section was given
  bool allow_anonymous = true;
  bool no_match_allow = true;    // no_match = allow | deny
  bool deny_disconnect = false;  // deny_action = ignore | disconnect
  // User name → secret, in file order: `password` (NanoMQ's file: plain, or Mosquitto's
  // "$6$"/"$7$" hashes) then `password_file` (Mosquitto's `user:hash` lines). A user in
  // both keeps the later entry.
  std::vector<std::pair<std::string, std::string>> passwords;
  bool check_users = false;   // a password source was given (even one naming no user)
  std::string password_file;  // ours; "" = none
  std::vector<AclRuleSettings> acl_rules;
  uint32_t cache_max_size = 32;                 // cache.max_size: publish decisions kept per client
  std::chrono::milliseconds cache_ttl{60'000};  // cache.ttl (file rules change only on reload)
  HttpAuthSettings http;                        // http_auth {}
  bool operator==(const AuthSettings&) const = default;
};

}  // namespace harbor::config
