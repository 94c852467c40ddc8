// Loading typed configuration: schema validation, errors, defaults, the shipped file,
// NanoMQ's own files, environment and command-line overrides.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "config/schema.hpp"
#include "load_helpers.hpp"

namespace harbor::config {
namespace {

using namespace std::chrono_literals;

const std::string kCompat = HARBOR_SHARED_DIR "/compat/nanomq/";

using test_support::load_error;
using test_support::load_ok;

bool has_warning(const std::vector<std::string>& warnings, const std::string& needle) {
  return std::any_of(warnings.begin(), warnings.end(),
                     [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

size_t count_warnings(const std::vector<std::string>& warnings, const std::string& needle) {
  return static_cast<size_t>(std::count_if(warnings.begin(), warnings.end(), [&](const auto& w) {
    return w.find(needle) != std::string::npos;
  }));
}

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

TEST(Defaults, EveryRowDefaultConverts) {
  auto d = defaults();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->source, "");
  EXPECT_TRUE(d->sqlite.enabled);
  EXPECT_TRUE(d->unimplemented_sections.empty());
}

TEST(Defaults, MatchTheHeaderDefaultsExceptSqliteEnabled) {
  // The header's member initialisers and the schema describe the same defaults; a
  // default-constructed Config runs in memory, the schema's default enables SQLite.
  Config expected;
  expected.sqlite.enabled = true;
  EXPECT_EQ(*defaults(), expected);
}

TEST(Defaults, ShippedFileEqualsDefaults) {
  auto r = load_file(HARBOR_SOURCE_DIR "/etc/harbormq.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
  Config loaded = *r->config;
  EXPECT_EQ(loaded.source, HARBOR_SOURCE_DIR "/etc/harbormq.conf");
  loaded.source = "";
  EXPECT_EQ(loaded, *defaults());
  EXPECT_TRUE(loaded.sqlite.enabled);
  EXPECT_EQ(loaded.sqlite.mounted_file_path, "./data");
  EXPECT_EQ(loaded.tcp.bind, "127.0.0.1:1883");  // loopback unless the operator opts in
}

TEST(Defaults, ShippedFileSetsEveryKey) {
  // "every key with a comment": each schema key appears in etc/harbormq.conf.
  std::ifstream in(HARBOR_SOURCE_DIR "/etc/harbormq.conf");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& row : schema()) {
    std::string leaf(row.key.substr(row.key.rfind('.') + 1));
    EXPECT_NE(text.find("\t" + leaf + " = "), std::string::npos) << row.key;
  }
}

TEST(Load, EmptyPathGivesDefaults) {
  auto r = load(LoadOptions{.path = "", .overrides = {}, .read_environment = false});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->config, *defaults());
}

TEST(Load, AllKeysMapIntoConfig) {
  Config c = load_ok(
      "system { num_taskq_thread = 4, pid_file = \"/run/h.pid\" }\n"
      "listeners.tcp { enable = false, bind = \"127.0.0.1:2883\" }\n"
      "mqtt {\n"
      "  max_packet_size = 10MB\n"
      "  max_mqueue_len = 0\n"
      "  retry_interval = 500ms\n"
      "  keepalive_multiplier = 1.5\n"
      "  max_inflight_window = 10\n"
      "  max_awaiting_rel = 20\n"
      "  await_rel_timeout = 1m\n"
      "  property_size = 64\n"
      "  max_topic_alias = 0\n"
      "  queue_qos0 = true\n"
      "  session_expiry_311 = 1h\n"
      "}\n"
      "sqlite {\n"
      "  mounted_file_path = \"/var/lib/harbormq\"\n"
      "  disk_cache_size = 0\n"
      "  flush_mem_threshold = 7\n"
      "  resend_interval = 250\n"
      "  ack_policy = immediate\n"
      "  synchronous = full\n"
      "  commit_interval = 5\n"
      "  commit_batch = 50\n"
      "}\n"
      "log { to = [file, syslog], level = debug, dir = \"/var/log\", file = \"h.log\"\n"
      "      rotation { size = 64KB, count = 3 } }\n");
  EXPECT_EQ(c.num_threads, 4u);
  EXPECT_EQ(c.pid_file, "/run/h.pid");
  EXPECT_FALSE(c.tcp.enabled);
  EXPECT_EQ(c.tcp.bind, "127.0.0.1:2883");
  EXPECT_EQ(c.mqtt.max_packet_size, 10u * 1024 * 1024);
  EXPECT_EQ(c.mqtt.max_mqueue_len, 0u);
  EXPECT_EQ(c.mqtt.retry_interval, 500ms);
  EXPECT_DOUBLE_EQ(c.mqtt.keepalive_multiplier, 1.5);
  EXPECT_EQ(c.mqtt.max_inflight_window, 10u);
  EXPECT_EQ(c.mqtt.max_awaiting_rel, 20u);
  EXPECT_EQ(c.mqtt.await_rel_timeout, 60s);
  EXPECT_EQ(c.mqtt.property_size, 64u);
  EXPECT_EQ(c.mqtt.max_topic_alias, 0u);
  EXPECT_TRUE(c.mqtt.queue_qos0);
  EXPECT_EQ(c.mqtt.session_expiry_311, 3600u);
  EXPECT_TRUE(c.sqlite.enabled);  // present section = enabled
  EXPECT_EQ(c.sqlite.mounted_file_path, "/var/lib/harbormq");
  EXPECT_EQ(c.sqlite.disk_cache_size, 0u);
  EXPECT_EQ(c.sqlite.flush_mem_threshold, 7u);
  EXPECT_EQ(c.sqlite.resend_interval, 250ms);  // bare number: milliseconds, as NanoMQ
  EXPECT_EQ(c.sqlite.ack_policy, AckPolicy::Immediate);
  EXPECT_EQ(c.sqlite.synchronous, SyncMode::Full);
  EXPECT_EQ(c.sqlite.commit_interval, 5ms);
  EXPECT_EQ(c.sqlite.commit_batch, 50u);
  EXPECT_EQ(c.log.to, (std::vector<std::string>{"file", "syslog"}));
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.dir, "/var/log");
  EXPECT_EQ(c.log.file, "h.log");
  EXPECT_EQ(c.log.rotation_size, 64u * 1024);
  EXPECT_EQ(c.log.rotation_count, 3u);
}

TEST(Load, BareSecondsForNanoMqSecondKeys) {
  Config c = load_ok("mqtt { retry_interval = 3, await_rel_timeout = 4, session_expiry_311 = 5 }");
  EXPECT_EQ(c.mqtt.retry_interval, 3s);
  EXPECT_EQ(c.mqtt.await_rel_timeout, 4s);
  EXPECT_EQ(c.mqtt.session_expiry_311, 5u);
}

// mqtt.max_keepalive (ours): a duration, a bare number in seconds, rounded up to whole
// seconds (a keep alive is a whole number of seconds); 0 = no maximum; at most 65535 s.
TEST(Load, MaxKeepaliveIsWholeSeconds) {
  EXPECT_EQ(defaults()->mqtt.max_keepalive, 0u);
  EXPECT_EQ(load_ok("mqtt.max_keepalive = 60").mqtt.max_keepalive, 60u);
  EXPECT_EQ(load_ok("mqtt.max_keepalive = 2m").mqtt.max_keepalive, 120u);
  EXPECT_EQ(load_ok("mqtt.max_keepalive = 1500ms").mqtt.max_keepalive, 2u);
  EXPECT_EQ(load_ok("mqtt.max_keepalive = 1ms").mqtt.max_keepalive, 1u) << "never 0 = none";
  EXPECT_EQ(load_ok("mqtt.max_keepalive = 65535").mqtt.max_keepalive, 65535u);
  EXPECT_NE(load_error("mqtt.max_keepalive = 65536\n").find("t.conf:1: mqtt.max_keepalive: must be between"),
            std::string::npos);
}

TEST(Load, SqliteEnableSpellings) {
  EXPECT_FALSE(load_ok("mqtt {}").sqlite.enabled);  // no section: in memory, as NanoMQ
  EXPECT_TRUE(load_ok("sqlite {}").sqlite.enabled);
  EXPECT_FALSE(load_ok("sqlite { enable = false }").sqlite.enabled);
  EXPECT_FALSE(load_ok("sqlite { enabled = false }").sqlite.enabled);
  EXPECT_FALSE(load_ok("sqlite.enable = false").sqlite.enabled);
  EXPECT_FALSE(load_ok("listeners.tcp.enabled = false").tcp.enabled);
  EXPECT_TRUE(load_ok("mqtt {}").tcp.enabled);
}

TEST(Load, LogToAcceptsClassicCommaString) {
  EXPECT_EQ(load_ok("log.to = \"file,console\"").log.to,
            (std::vector<std::string>{"file", "console"}));
  EXPECT_EQ(load_ok("log.to = console").log.to, (std::vector<std::string>{"console"}));
}

TEST(Load, CountWrittenAsDurationWarnsAndTakesTheNumber) {
  auto r = load_string("mqtt {\n  max_awaiting_rel = 10s\n}\n", "t.conf");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->config->mqtt.max_awaiting_rel, 10u);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0],
            "t.conf:2: mqtt.max_awaiting_rel: a count written as a duration (\"10s\", as NanoMQ's "
            "files do); read as 10");
}

TEST(Load, SubstitutionsAndIncludesReachTheSchema) {
  auto dir = std::filesystem::temp_directory_path() /
             ("harbor_load_include_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "mqtt.conf") << "mqtt.max_inflight_window = 77\n";
  std::ofstream(dir / "main.conf") << "limits { window = 5 }\n"
                                      "include \"mqtt.conf\"\n"
                                      "mqtt.max_mqueue_len = ${limits.window}\n";
  auto r = load_file((dir / "main.conf").string());
  std::filesystem::remove_all(dir);
  // `limits` is not ours: substitution sources must still be valid keys.
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().key, "limits");

  Config c =
      load_ok("mqtt { max_inflight_window = 9, max_mqueue_len = ${mqtt.max_inflight_window} }");
  EXPECT_EQ(c.mqtt.max_mqueue_len, 9u);
}

TEST(Errors, UnknownKeySuggestsClosest) {
  EXPECT_EQ(load_error("mqtt {\n  max_inflight_windw = 10\n}\n"),
            "t.conf:2: mqtt.max_inflight_windw: unknown key, did you mean "
            "mqtt.max_inflight_window?");
  EXPECT_EQ(load_error("mqt { }\n"), "t.conf:1: mqt: unknown key, did you mean mqtt?");
  EXPECT_EQ(load_error("\nsqlite.mounted_path = x\n"),
            "t.conf:2: sqlite.mounted_path: unknown key, did you mean sqlite.mounted_file_path?");
  EXPECT_EQ(load_error("listeners.tpc.bind = \"0.0.0.0:1\"\n"),
            "t.conf:1: listeners.tpc: unknown key, did you mean listeners.tcp?");
}

TEST(Errors, WrongTypesAndRanges) {
  EXPECT_EQ(load_error("mqtt.max_inflight_window = lots\n"),
            "t.conf:1: mqtt.max_inflight_window: expected a whole number, got \"lots\"");
  EXPECT_EQ(load_error("mqtt.max_inflight_window = 0\n"),
            "t.conf:1: mqtt.max_inflight_window: must be between 1 and 65535, got 0");
  EXPECT_EQ(load_error("mqtt.max_packet_size = 1GB\n"),
            "t.conf:1: mqtt.max_packet_size: must be between 1 bytes and 268435460 bytes, got "
            "1073741824 bytes");
  EXPECT_EQ(load_error("mqtt.keepalive_multiplier = 0.1\n"),
            "t.conf:1: mqtt.keepalive_multiplier: must be between 0.5 and 100, got 0.1");
  EXPECT_EQ(load_error("mqtt.keepalive_multiplier = fast\n"),
            "t.conf:1: mqtt.keepalive_multiplier: expected a number, got \"fast\"");
  EXPECT_EQ(load_error("mqtt.queue_qos0 = maybe\n"),
            "t.conf:1: mqtt.queue_qos0: expected true or false, got \"maybe\"");
  EXPECT_EQ(load_error("mqtt.retry_interval = 10w\n"),
            "t.conf:1: mqtt.retry_interval: unknown duration unit \"w\" (use ms, s, m, h or d)");
  EXPECT_EQ(load_error("sqlite.ack_policy = later\n"),
            "t.conf:1: sqlite.ack_policy: expected one of after_commit|immediate, got \"later\"");
  EXPECT_EQ(load_error("log.to = [file, printer]\n"),
            "t.conf:1: log.to: expected items from file|console|syslog, got \"printer\"");
  EXPECT_EQ(load_error("listeners.tcp.bind = 1883\n"),
            "t.conf:1: listeners.tcp.bind: expected host:port with a port of 0-65535, got "
            "\"1883\"");
  EXPECT_EQ(load_error("listeners.tcp.bind = \"h:70000\"\n"),
            "t.conf:1: listeners.tcp.bind: expected host:port with a port of 0-65535, got "
            "\"h:70000\"");
  EXPECT_EQ(load_error("mqtt.max_packet_size { a = 1 }\n"),
            "t.conf:1: mqtt.max_packet_size: expected size, got an object");
  EXPECT_EQ(load_error("mqtt = 5\n"), "t.conf:1: mqtt: is a section: expected { ... }, got \"5\"");
  EXPECT_EQ(load_error("mqtt.max_awaiting_rel = 10q\n"),
            "t.conf:1: mqtt.max_awaiting_rel: expected a whole number, got \"10q\"");
}

TEST(Errors, ToStringLeavesOutUnknownParts) {
  EXPECT_EQ((ConfigError{"f", 3, "k", "m"}.to_string()), "f:3: k: m");
  EXPECT_EQ((ConfigError{"<environment>", 0, "k", "m"}.to_string()), "<environment>: k: m");
  EXPECT_EQ((ConfigError{"f", 2, "", "m"}.to_string()), "f:2: m");
}

TEST(Errors, MissingFile) {
  auto r = load_file("/nonexistent/harbormq.conf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().file, "/nonexistent/harbormq.conf");
}

TEST(Unimplemented, SectionsWarnOnceAndAreNotValidated) {
  auto r = load_string(
      "listeners.quic { bind = \"0.0.0.0:14567\", anything = [goes] }\n"
      "listeners.quic { more = 1 }\n"
      "bridges.aws.a { server = x }\n"
      "bridges.aws.b { server = y }\n"
      "webhook { enable = true }\n",
      "t.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->config->unimplemented_sections,
            (std::vector<std::string>{"listeners.quic", "bridges.aws", "webhook"}));
  ASSERT_EQ(r->warnings.size(), 3u);
  EXPECT_EQ(r->warnings[0],
            "t.conf:1: listeners.quic: NanoMQ section not implemented yet (MQTT over QUIC "
            "listener); accepted, contents ignored");
}

TEST(HttpServer, OffWithoutTheSectionOnWithIt) {
  EXPECT_FALSE(load_ok("mqtt { max_inflight_window = 10 }\n").http_server.enabled);
  Config on = load_ok("http_server { port = 9000, ip_addr = \"0.0.0.0\", username = \"\" }\n");
  EXPECT_TRUE(on.http_server.enabled);
  EXPECT_EQ(on.http_server.port, 9000);
  EXPECT_EQ(on.http_server.ip_addr, "0.0.0.0");
  EXPECT_EQ(on.http_server.username, "");
  EXPECT_FALSE(load_ok("http_server { enable = false }\n").http_server.enabled);
}

TEST(HttpServer, JwtIsRefusedNamingFileLineAndKey) {
  auto r = load_string("http_server {\n  port = 8081\n  auth_type = jwt\n}\n", "h.conf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().file, "h.conf");
  EXPECT_EQ(r.error().line, 3);
  EXPECT_EQ(r.error().key, "http_server.auth_type");
  EXPECT_NE(r.error().message.find("jwt is not implemented"), std::string::npos);
}

TEST(HttpServer, ValueErrorsNameTheKey) {
  auto r = load_string("http_server {\n  port = 70000\n}\n", "h.conf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().line, 2);
  EXPECT_EQ(r.error().key, "http_server.port");
  auto typo = load_string("http_server {\n  usrname = x\n}\n", "h.conf");
  ASSERT_FALSE(typo);
  EXPECT_NE(typo.error().message.find("did you mean http_server.username"), std::string::npos);
}

TEST(Unimplemented, NanoMqKeysInImplementedSectionsWarnOnceEach) {
  auto r = load_string(
      "system { daemon = false, parallel = 0, num_taskq_thread = 2 }\n"
      "log { rotation { size = 10MB, count = 5 } }\n",
      "t.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->config->num_threads, 2u);
  EXPECT_EQ(r->warnings.size(), 2u);
  EXPECT_TRUE(has_warning(r->warnings, "system.daemon: NanoMQ key not implemented"));
  EXPECT_TRUE(has_warning(r->warnings, "system.parallel: NanoMQ key not implemented"));
  EXPECT_FALSE(has_warning(r->warnings, "log.rotation"));  // implemented: size and count
  EXPECT_EQ(r->config->log.rotation_size, 10u * 1024 * 1024);
  EXPECT_EQ(r->config->log.rotation_count, 5u);
  EXPECT_TRUE(r->config->unimplemented_sections.empty());
}

TEST(Compat, NanoMqDefaultConf) {
  auto r = load_file(kCompat + "nanomq.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  const Config& c = *r->config;
  EXPECT_EQ(c.mqtt.property_size, 32u);
  EXPECT_EQ(c.mqtt.max_packet_size, 256u * 1024 * 1024);
  EXPECT_EQ(c.mqtt.max_mqueue_len, 2048u);
  EXPECT_EQ(c.mqtt.retry_interval, 10s);
  EXPECT_DOUBLE_EQ(c.mqtt.keepalive_multiplier, 1.25);
  EXPECT_EQ(c.mqtt.max_inflight_window, 2048u);
  EXPECT_EQ(c.mqtt.max_awaiting_rel, 10u);
  EXPECT_EQ(c.mqtt.await_rel_timeout, 10s);
  EXPECT_EQ(c.tcp.bind, "0.0.0.0:1883");
  EXPECT_TRUE(c.tcp.enabled);
  EXPECT_FALSE(c.sqlite.enabled);  // NanoMQ's default file has no sqlite section
  EXPECT_EQ(c.log.to, (std::vector<std::string>{"file", "console"}));
  EXPECT_EQ(c.log.level, "warn");
  EXPECT_EQ(c.log.file, "nanomq.log");
  EXPECT_EQ(c.log.rotation_size, 10u * 1024 * 1024);
  EXPECT_EQ(c.log.rotation_count, 5u);
  // Its listeners.ws is read and switched on by being present.
  EXPECT_TRUE(c.ws.enabled);
  EXPECT_EQ(c.ws.bind, "0.0.0.0:8083");
  EXPECT_EQ(c.ws.path, "/mqtt");
  EXPECT_TRUE(c.unimplemented_sections.empty());
  // Its http_server is read: on by being present, NanoMQ's keys (jwt keyfile unused: basic).
  EXPECT_TRUE(c.http_server.enabled);
  EXPECT_EQ(c.http_server.port, 8081);
  EXPECT_EQ(c.http_server.ip_addr, "127.0.0.1");  // ours: loopback unless opened
  EXPECT_EQ(c.http_server.limit_conn, 2u);
  EXPECT_EQ(c.http_server.username, "admin");
  EXPECT_EQ(c.http_server.password, "public");
  EXPECT_EQ(c.http_server.auth_type, HttpAuthType::Basic);
  EXPECT_EQ(c.http_server.jwt_public_keyfile, "/etc/certs/jwt/jwtRS256.key.pub");
  EXPECT_TRUE(c.auth.present);  // auth {} is read: anonymous allowed, no users, no rules
  EXPECT_TRUE(c.auth.allow_anonymous);
  EXPECT_FALSE(c.auth.check_users);
  EXPECT_TRUE(c.auth.acl_rules.empty());
  EXPECT_TRUE(has_warning(r->warnings, "mqtt.max_awaiting_rel"));
  EXPECT_FALSE(has_warning(r->warnings, "log.rotation"));
  EXPECT_FALSE(has_warning(r->warnings, "listeners.ws"));
  EXPECT_EQ(r->warnings.size(), 1u);  // mqtt.max_awaiting_rel
}

TEST(Compat, NanoMqExampleConf) {
  auto r = load_file(kCompat + "nanomq_example.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  const Config& c = *r->config;
  EXPECT_EQ(c.num_threads, 0u);
  EXPECT_EQ(c.mqtt.max_packet_size, 1024u);  // 1KB
  EXPECT_EQ(c.mqtt.max_topic_alias, 1024u);
  EXPECT_EQ(c.mqtt.max_awaiting_rel, 10u);
  EXPECT_EQ(c.mqtt.retry_interval, 10s);
  EXPECT_TRUE(c.sqlite.enabled);  // the section is present
  EXPECT_EQ(c.sqlite.disk_cache_size, 102400u);
  EXPECT_EQ(c.sqlite.flush_mem_threshold, 100u);
  EXPECT_EQ(c.sqlite.resend_interval, 5000ms);
  EXPECT_EQ(c.tcp.bind, "0.0.0.0:1883");
  // Its named listeners are read, each with its own keys, and warn nothing.
  ASSERT_EQ(c.named_listeners.tcp.size(), 2u);
  EXPECT_EQ(c.named_listeners.tcp[0].key, "listeners.tcp.default_1");
  EXPECT_EQ(c.named_listeners.tcp[0].bind, "0.0.0.0:1884");
  EXPECT_EQ(c.named_listeners.tcp[1].bind, "0.0.0.0:1885");
  ASSERT_EQ(c.named_listeners.ssl.size(), 2u);
  EXPECT_EQ(c.named_listeners.ssl[0].name, "default_1");
  EXPECT_EQ(c.named_listeners.ssl[0].bind, "0.0.0.0:8881");
  EXPECT_EQ(c.named_listeners.ssl[0].tls.certfile, "/etc/certs/cert.pem");
  EXPECT_EQ(c.named_listeners.ssl[1].bind, "0.0.0.0:8884");
  EXPECT_TRUE(c.named_listeners.ws.empty());
  EXPECT_TRUE(c.named_listeners.wss.empty());
  EXPECT_EQ(count_warnings(r->warnings, ".default_"), 0u);
  EXPECT_TRUE(c.http_server.enabled);
  EXPECT_EQ(c.http_server.ip_addr, "0.0.0.0");
  EXPECT_EQ(c.http_server.limit_conn, 32u);
  EXPECT_EQ(count_warnings(r->warnings, ": http_server"), 0u);
  for (const char* section : {"webhook", "preset", "bridges.aws", "bridges.nng", "rules",
                              "exchange_client", "parquet", "plugin"}) {
    EXPECT_EQ(std::count(c.unimplemented_sections.begin(), c.unimplemented_sections.end(), section),
              1)
        << section;
    EXPECT_EQ(count_warnings(r->warnings, std::string(": ") + section + ": "), 1u) << section;
  }
  EXPECT_TRUE(c.ws.enabled);
  EXPECT_EQ(c.ws.bind, "0.0.0.0:8083");
  EXPECT_EQ(c.ws.path, "/mqtt");
  EXPECT_EQ(count_warnings(r->warnings, ": listeners.ws: "), 0u);
  // listeners.ssl is read: present, so on, with NanoMQ's keys (the files are read at start).
  EXPECT_TRUE(c.ssl.enabled);
  EXPECT_EQ(c.ssl.bind, "0.0.0.0:8883");
  EXPECT_EQ(c.ssl.keyfile, "/etc/certs/key.pem");
  EXPECT_EQ(c.ssl.certfile, "/etc/certs/cert.pem");
  EXPECT_EQ(c.ssl.cacertfile, "/etc/certs/cacert.pem");
  EXPECT_FALSE(c.ssl.verify_peer);
  EXPECT_FALSE(c.ssl.fail_if_no_peer_cert);
  EXPECT_EQ(count_warnings(r->warnings, ": listeners.ssl: "), 0u);
  // listeners.wss is read: present, so on, serving listeners.ssl's certificate.
  EXPECT_TRUE(c.wss.enabled);
  EXPECT_EQ(c.wss.bind, "0.0.0.0:8086");
  EXPECT_EQ(c.wss.path, "/mqtt");
  EXPECT_EQ(count_warnings(r->warnings, ": listeners.wss"), 0u);
  EXPECT_EQ(
      std::count(c.unimplemented_sections.begin(), c.unimplemented_sections.end(), "listeners.wss"),
      0);
  for (const char* key : {"system.max_taskq_thread", "system.parallel", "system.hook_ipc_url",
                          "system.cmd_ipc_url"}) {
    EXPECT_EQ(count_warnings(r->warnings, std::string(": ") + key + ": "), 1u) << key;
  }
  EXPECT_EQ(count_warnings(r->warnings, "log.rotation"), 0u);
  EXPECT_EQ(c.log.rotation_size, 10u * 1024 * 1024);
  EXPECT_EQ(c.log.rotation_count, 5u);
  // Its includes point at /etc files this machine does not have: users are still checked
  // (none, so every user name is refused), the ACL has no rules; both warned.
  EXPECT_TRUE(c.auth.check_users);
  EXPECT_TRUE(c.auth.passwords.empty());
  EXPECT_EQ(count_warnings(r->warnings, ": auth.password: names no user"), 1u);
  EXPECT_EQ(count_warnings(r->warnings, ": auth.acl: has no rules"), 1u);
}

TEST(Compat, NanoMqBridgeConf) {
  auto r = load_file(kCompat + "nanomq_bridge.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  // bridges.mqtt is read (bridges_test.cpp checks its contents); what it warns about are
  // the keys accepted but not acted on, each named in full.
  EXPECT_TRUE(r->config->unimplemented_sections.empty());
  ASSERT_EQ(r->config->bridges.size(), 1u);
  EXPECT_FALSE(r->warnings.empty());
  for (const auto& w : r->warnings) {
    EXPECT_TRUE(w.find(": bridges.mqtt.emqx1.") != std::string::npos ||
                w.find(": bridges.mqtt.cache.") != std::string::npos)
        << w;
  }
  EXPECT_FALSE(r->config->sqlite.enabled);
  EXPECT_EQ(r->config->mqtt, defaults()->mqtt);
}

TEST(Compat, AuthIncludesOfNanoMqFiles) {
  std::string text = "auth {\n  allow_anonymous = true\n  password = {include \"" + kCompat +
                     "nanomq_pwd.conf\"}\n  acl = {include \"" + kCompat +
                     "nanomq_acl.conf\"}\n}\n";
  auto r = load_string(text, "t.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->config->unimplemented_sections.empty());
  const AuthSettings& a = r->config->auth;
  EXPECT_EQ(a.passwords, (std::vector<std::pair<std::string, std::string>>{{"admin", "public"},
                                                                           {"client", "public"}}));
  ASSERT_EQ(a.acl_rules.size(), 2u);  // the file's third rule is commented out
  EXPECT_TRUE(a.acl_rules[0].allow);
  EXPECT_EQ(a.acl_rules[0].actions, 2);
  ASSERT_EQ(a.acl_rules[0].who.size(), 1u);
  EXPECT_EQ(a.acl_rules[0].who[0].username, "dashboard");
  EXPECT_EQ(a.acl_rules[0].topics, (std::vector<std::string>{"$SYS/#"}));
  EXPECT_TRUE(a.acl_rules[1].who.empty());
  EXPECT_TRUE(a.acl_rules[1].topics.empty());
  EXPECT_EQ(a.acl_rules[1].actions, 3);
}

TEST(Overrides, EnvironmentThenCommandLine) {
  ScopedEnv window("HARBORMQ_MQTT__MAX_INFLIGHT_WINDOW", "10");
  ScopedEnv bind("harbormq_listeners__tcp__bind", "127.0.0.1:1999");
  ScopedEnv level("HARBORMQ_LOG__LEVEL", "debug");
  ScopedEnv unrelated("HARBORMQ_HOME", "/somewhere");  // no "__": not configuration
  auto r = load(LoadOptions{.path = std::string(HARBOR_SOURCE_DIR "/etc/harbormq.conf"),
                            .overrides = {"log.level=error", "log.to=[file, console]",
                                          "sqlite.mounted_file_path=/tmp/with space"},
                            .read_environment = true});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->config->mqtt.max_inflight_window, 10u);
  EXPECT_EQ(r->config->tcp.bind, "127.0.0.1:1999");
  EXPECT_EQ(r->config->log.level, "error");  // the command line wins over the environment
  EXPECT_EQ(r->config->log.to, (std::vector<std::string>{"file", "console"}));
  EXPECT_EQ(r->config->sqlite.mounted_file_path, "/tmp/with space");
}

TEST(Overrides, EnvironmentIgnoredWhenNotAsked) {
  ScopedEnv window("HARBORMQ_MQTT__MAX_INFLIGHT_WINDOW", "10");
  auto r = load(LoadOptions{.path = "", .overrides = {}, .read_environment = false});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->config->mqtt.max_inflight_window, 2048u);
}

TEST(Overrides, ErrorsNameTheirSource) {
  {
    ScopedEnv bad("HARBORMQ_MQTT__MAX_INFLIGHT_WINDW", "10");
    auto r = load(LoadOptions{.path = "", .overrides = {}, .read_environment = true});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().to_string(),
              "<environment>: mqtt.max_inflight_windw: unknown key, did you mean "
              "mqtt.max_inflight_window?");
  }
  {
    ScopedEnv bad("HARBORMQ_MQTT__MAX_INFLIGHT_WINDOW", "0");
    auto r = load(LoadOptions{.path = "", .overrides = {}, .read_environment = true});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().to_string(),
              "<environment>: mqtt.max_inflight_window: must be between 1 and 65535, got 0");
  }
  auto r = load(LoadOptions{
      .path = "", .overrides = {"mqtt.retry_interval=soon"}, .read_environment = false});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(),
            "<command line>: mqtt.retry_interval: expected a duration such as 10s or 500ms, got "
            "\"soon\"");
  auto missing_equals = load(
      LoadOptions{.path = "", .overrides = {"mqtt.retry_interval"}, .read_environment = false});
  ASSERT_FALSE(missing_equals);
  EXPECT_EQ(missing_equals.error().file, "<command line>");
}

TEST(Overrides, SqliteSectionFromOverridesFollowsPresenceRule) {
  // A NanoMQ file without sqlite runs in memory; an override switches it on explicitly.
  auto r = load(LoadOptions{.path = kCompat + "nanomq.conf",
                            .overrides = {"sqlite.enable=true"},
                            .read_environment = false});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->config->sqlite.enabled);
  auto off = load(
      LoadOptions{.path = "", .overrides = {"sqlite.enable=false"}, .read_environment = false});
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->config->sqlite.enabled);
}

TEST(Diff, ListsChangedKeysWithReloadability) {
  Config after = *defaults();
  after.mqtt.max_inflight_window = 10;
  after.tcp.bind = "0.0.0.0:1884";
  after.mqtt.retry_interval = std::chrono::milliseconds(500);
  auto changes = diff(*defaults(), after);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0], (KeyChange{"listeners.tcp.bind", "127.0.0.1:1883", "0.0.0.0:1884", false}));
  EXPECT_EQ(changes[1], (KeyChange{"mqtt.retry_interval", "10000ms", "500ms", true}));
  EXPECT_EQ(changes[2], (KeyChange{"mqtt.max_inflight_window", "2048", "10", true}));
  EXPECT_TRUE(diff(*defaults(), *defaults()).empty());
}

TEST(Diff, EveryRowShowsEveryField) {
  // A key whose setter changes the Config must show up in the diff: catches a row whose
  // `show` reads a different field than its `apply` writes.
  for (const auto& row : schema()) {
    auto r = load(LoadOptions{.path = "", .overrides = {}, .read_environment = false});
    ASSERT_TRUE(r);
    Config changed = *r->config;
    Typed v;
    v.boolean = !row.show(changed).starts_with("true");
    v.integer = row.min + 1000;
    v.real = 0.75;
    v.text = row.type == ValueType::Enum
                 ? std::string(row.choices.substr(row.choices.rfind('|') + 1))
                 : std::string("changed");
    v.list = {"file"};
    row.apply(changed, v);
    auto changes = diff(*r->config, changed);
    ASSERT_EQ(changes.size(), 1u) << row.key;
    EXPECT_EQ(changes[0].key, row.key);
  }
}

TEST(Load, WebSocketListenerPresenceAndEnableSpellings) {
  EXPECT_FALSE(defaults()->ws.enabled);                // no WebSocket port unless asked for
  EXPECT_FALSE(load_ok("mqtt {}").ws.enabled);         // a file without the section
  EXPECT_TRUE(load_ok("listeners.ws {}").ws.enabled);  // NanoMQ's rule: present is on
  EXPECT_TRUE(load_ok("listeners.ws.bind = \"127.0.0.1:9001/mqtt\"").ws.enabled);
  EXPECT_FALSE(load_ok("listeners.ws { enable = false, bind = \"1.2.3.4:1/x\" }").ws.enabled);
  EXPECT_FALSE(load_ok("listeners.ws { enabled = false }").ws.enabled);
  EXPECT_TRUE(load_ok("listeners.ws { enable = true }").ws.enabled);
  // An override is a section too: `--set listeners.ws.bind=...` alone opens it.
  auto r = load(LoadOptions{
      .path = "", .overrides = {"listeners.ws.bind=127.0.0.1:0/mqtt"}, .read_environment = false});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->config->ws.enabled);
  EXPECT_EQ(r->config->ws.bind, "127.0.0.1:0");
}

TEST(Load, WebSocketBindIsHostPortAndPath) {
  Config c = load_ok("listeners.ws { bind = \"0.0.0.0:8083/mqtt\" }");
  EXPECT_EQ(c.ws.bind, "0.0.0.0:8083");
  EXPECT_EQ(c.ws.path, "/mqtt");
  c = load_ok("listeners.ws { bind = \"127.0.0.1:9001\" }");  // no path: /mqtt
  EXPECT_EQ(c.ws.bind, "127.0.0.1:9001");
  EXPECT_EQ(c.ws.path, "/mqtt");
  c = load_ok("listeners.ws { bind = \"[::1]:9001/a/b\" }");
  EXPECT_EQ(c.ws.bind, "[::1]:9001");
  EXPECT_EQ(c.ws.path, "/a/b");
  c = load_ok("listeners.ws { bind = \"127.0.0.1:9001/\" }");
  EXPECT_EQ(c.ws.path, "/");
  EXPECT_NE(load_error("listeners.ws { bind = \"127.0.0.1/mqtt\" }")
                .find("t.conf:1: listeners.ws.bind: expected host:port/path"),
            std::string::npos);
  EXPECT_NE(load_error("listeners.ws { bind = \"127.0.0.1:70000/mqtt\" }").find("host:port/path"),
            std::string::npos);
  EXPECT_NE(load_error("listeners.ws { bind = \"127.0.0.1:8083/mqtt?x=1\" }").find("'?'"),
            std::string::npos);
  EXPECT_NE(load_error("listeners.ws { bind = \"127.0.0.1:8083/a b\" }").find("spaces"),
            std::string::npos);
  EXPECT_NE(load_error("listeners.ws { port = 1 }").find("unknown key, did you mean"),
            std::string::npos);
}

TEST(Reload, WebSocketListenerKeepsItsRunningValues) {
  // Both keys need a restart: a reload keeps the running bind (address and path together).
  Config running = load_ok("listeners.ws { bind = \"127.0.0.1:9001/ws\" }");
  Config fresh = load_ok("listeners.ws { enable = false, bind = \"0.0.0.0:9002\" }");
  auto merged = merge_for_reload(running, fresh);
  EXPECT_TRUE(merged->ws.enabled);
  EXPECT_EQ(merged->ws.bind, "127.0.0.1:9001");
  EXPECT_EQ(merged->ws.path, "/ws");
  auto changes = diff(running, fresh);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0], (KeyChange{"listeners.ws.enable", "true", "false", false}));
  EXPECT_EQ(changes[1],
            (KeyChange{"listeners.ws.bind", "127.0.0.1:9001/ws", "0.0.0.0:9002/mqtt", false}));
}

TEST(Load, UnquotedAddress) {
  EXPECT_EQ(load_ok("listeners.tcp.bind = 0.0.0.0:1884").tcp.bind, "0.0.0.0:1884");
}

TEST(Schema, EditDistanceAndClosest) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(closest_key("mqtt.retry_intervall"), "mqtt.retry_interval");
  EXPECT_EQ(closest_key("sqlite.enabel"), "sqlite.enable");
}

TEST(Schema, KeysAreUniqueAndTyped) {
  std::vector<std::string_view> keys;
  for (const auto& row : schema()) {
    EXPECT_NE(row.apply, nullptr) << row.key;
    EXPECT_FALSE(row.doc.empty()) << row.key;
    keys.push_back(row.key);
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
}

}  // namespace
}  // namespace harbor::config
