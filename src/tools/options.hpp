// Option structs of every tool and their CLI11 registration. Main thread only.
// Registration only binds options to fields; finalize_*() validates and converts after
// parsing and returns a message for the user on error (exit code kExitUsage).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "mqtt/packets.hpp"
#include "tools/client_stream.hpp"
#include "tools/output_format.hpp"
#include "tools/property_options.hpp"

namespace CLI {
class App;
}

namespace harbor::tools {

// Connection settings shared by pub, sub, conn and bench.
struct ConnectOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 1883;
  std::string client_id;  // empty: generated (pub/sub) or template default (bench)
  std::string version_text;  // -V; empty: 3.1.1, or 5 when -D is given (as mosquitto)
  mqtt::Version version = mqtt::Version::v311;
  std::string unix_path;     // --unix: connect to this Unix-domain socket instead of TCP
  std::string url;           // -L mqtt://[user[:password]@]host[:port]/topic
  std::string url_topic;     // the topic of -L, for pub (-t) or sub (one more -t)
  bool no_clean = false;  // -c: clean start / clean session off
  bool clean_start = true;
  std::optional<uint32_t> session_expiry;  // 5.0 session expiry interval (s)
  uint16_t keepalive = 60;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string will_topic;
  std::string will_payload;
  int will_qos = 0;
  bool will_retain = false;
  std::vector<std::string> connect_user_props_text;  // "key=value"
  mqtt::UserProperties connect_user_props;
  // -D command identifier value (as given, one entry per -D) and, after finalize(), every
  // packet's properties: -D merged with -x, --connect-property and the tool's own options.
  std::vector<std::vector<std::string>> property_args;
  PacketProperties props;
  double timeout_s = 10;  // connect, CONNACK and acknowledgement waits
  // TLS, with mosquitto_pub's option names: --cafile (or mqtts:// / wss://, or our --tls
  // for the system's CAs) turns it on. The broker's certificate is verified and must name
  // the host (-h), unless --insecure (mosquitto's meaning: the name is not checked).
  bool tls = false;
  std::string cafile;
  std::string certfile;  // --cert, with --key: a client certificate
  std::string keyfile;
  bool insecure = false;
  std::string ws_path;  // --ws PATH (or ws:// / wss://): MQTT over WebSocket on this path
  // After finalize(): what every connection filters its bytes through (TLS context built
  // once, shared by all of bench's connections).
  StreamOptions stream;
};

struct PubOptions {
  ConnectOptions conn;
  std::string topic;                   // -t, or the topic of -L
  std::optional<std::string> message;  // -m
  std::string file;                    // -f: whole file is one message
  bool stdin_lines = false;            // -l: every stdin line is one message
  bool stdin_whole = false;            // -s: all of stdin is one message
  bool null_message = false;           // -n: empty payload
  int qos = 0;
  bool retain = false;
  int repeat = 1;                  // each message is sent this many times
  double repeat_delay_s = 0;       // pause between repeats
  std::vector<std::string> user_props_text;
  mqtt::UserProperties user_props;
  std::string content_type;
  std::optional<uint32_t> message_expiry;
  std::string response_topic;
  std::string correlation_data;
  int verbose = 0;  // -d: print packets to stderr
};

struct SubOptions {
  ConnectOptions conn;
  std::vector<std::string> topics;
  int qos = 0;
  uint64_t count = 0;  // -C: exit after this many messages (0 = never)
  double wait_s = 0;   // -W: exit with kExitTimeout when nothing arrives for this long
  int verbose = 0;     // -v: topic + payload; -vv: also QoS, retain and properties
  bool exit_after_subscribe = false;  // -E
  bool no_local = false;
  bool retain_as_published = false;
  int retain_handling = 0;
  bool skip_retained = false;  // -R: do not print messages with the retain flag
  bool retained_only = false;  // --retained-only: print retained ones, exit at the first fresh one
  std::vector<std::string> filter_out;   // -T: do not print messages whose topic matches
  std::vector<std::string> unsubscribe;  // -U: unsubscribe from these after subscribing
  bool no_eol = false;                   // -N: no newline after each message
  std::optional<std::string> format_text;  // -F (an empty format prints just the newline)
  std::optional<OutputFormat> format;    // parsed -F
  std::vector<std::string> user_props_text;
  mqtt::UserProperties user_props;
  bool debug = false;  // -d: print packets to stderr
};

enum class BenchMode { Pub, Sub, Conn };

struct BenchOptions {
  BenchMode mode = BenchMode::Pub;
  ConnectOptions conn;
  int clients = 1;
  int threads = 0;  // 0: one per CPU
  uint64_t start_number = 0;
  std::string topic = "bench/%i";
  int qos = 0;
  size_t payload_size = 256;
  double rate = 0;      // pub: messages/s per publisher; sub: messages/s each subscriber reads at most; 0 = unlimited
  double duration_s = 0;  // 0 = until --count or Ctrl-C
  uint64_t count = 0;   // pub: per publisher; sub: total received
  std::string group;    // shared subscription group
  int inflight = 64;    // QoS 1/2 publisher window
  bool retain = false;
  double connect_rate = 0;  // connections per second, 0 = as fast as possible
  int max_pending_connects = 256;
  double idle_s = 0;    // sub: stop after this long without messages (from setup if none came)
  double drain_s = 5;   // pub: how long to wait for outstanding acks at the end
  bool subscribe_only = false;  // sub: disconnect right after SUBACK (set up a session)
  bool no_subscribe = false;    // sub: rely on the session's existing subscription
  std::string json_file;
  std::string ready_file;  // written once every client is connected (and subscribed)
  bool quiet = false;
};

void add_connect_options(CLI::App& app, ConnectOptions& o, bool with_will = true);
void add_pub_options(CLI::App& app, PubOptions& o);
void add_sub_options(CLI::App& app, SubOptions& o);
void add_bench_options(CLI::App& app, BenchOptions& o);

tl::expected<void, std::string> finalize(ConnectOptions& o);
tl::expected<void, std::string> finalize(PubOptions& o);
tl::expected<void, std::string> finalize(SubOptions& o);
tl::expected<void, std::string> finalize(BenchOptions& o);

// "3.1.1", "311", "4", "mqttv311" → v311; "5", "5.0", "mqttv5" → v5; "3.1", "3" → v31.
std::optional<mqtt::Version> parse_version(std::string_view text);
// "key=value" (the first '=' splits).
tl::expected<std::pair<std::string, std::string>, std::string> parse_user_property(std::string_view text);

}  // namespace harbor::tools
