#include "tools/options.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <thread>

#include "mqtt/topic.hpp"
#include "tools/broker_url.hpp"

namespace harbor::tools {

namespace {
void add_common_connect(CLI::App& app, ConnectOptions& o) {
  app.add_option("-h,--host", o.host, "Broker host")->capture_default_str();
  app.add_option("-p,--port", o.port, "Broker port")->capture_default_str();
  app.add_option("-V,--protocol-version", o.version_text,
                 "MQTT version: 3.1.1 (or 311, 4) or 5; default 3.1.1, or 5 when -D is given");
  app.add_option("-x,--session-expiry", o.session_expiry,
                 "MQTT 5 session expiry interval in seconds (4294967295 = never)");
  app.add_option("-k,--keepalive", o.keepalive, "Keep alive in seconds")->capture_default_str();
  app.add_option("-u,--username", o.username, "User name");
  app.add_option("-P,--password", o.password, "Password");
  app.add_option("--connect-property", o.connect_user_props_text,
                 "User property KEY=VALUE on CONNECT (MQTT 5, repeatable)");
  app.add_option("--timeout", o.timeout_s, "Seconds to wait for connect, CONNACK and acknowledgements")
      ->capture_default_str();
  app.add_option("--cafile", o.cafile,
                 "TLS: trust these CAs (PEM) for the broker's certificate; turns TLS on");
  app.add_flag("--tls", o.tls,
               "TLS with the system's trusted CAs (implied by --cafile, mqtts://, wss://)");
  app.add_option("--cert", o.certfile, "TLS: client certificate (PEM), with --key");
  app.add_option("--key", o.keyfile, "TLS: the client certificate's private key (PEM)");
  app.add_flag("--insecure", o.insecure,
               "TLS: do not check that the broker's certificate names the host");
  app.add_option("--ws", o.ws_path,
                 "MQTT over WebSocket on this path, e.g. /mqtt (ws:// and wss:// URLs: /mqtt)");
}

tl::expected<void, std::string> finalize_stream(ConnectOptions& o) {
  o.stream = StreamOptions{};
  if (o.certfile.empty() != o.keyfile.empty())
    return tl::unexpected(std::string("--cert and --key go together"));
  if (!o.cafile.empty() || !o.certfile.empty()) o.tls = true;
  if (o.insecure && !o.tls)
    return tl::unexpected(std::string("--insecure needs TLS (--cafile, --tls or mqtts://)"));
  if (!o.ws_path.empty() && o.ws_path.front() != '/')
    return tl::unexpected("--ws takes a path starting with '/', got '" + o.ws_path + "'");
  if (o.tls) {
    wire::TlsClientOptions t;
    t.cacertfile = o.cafile;
    t.certfile = o.certfile;
    t.keyfile = o.keyfile;
    t.server_name = o.insecure ? std::string() : o.host;
    auto context = wire::TlsContext::client(t);
    if (!context) return tl::unexpected(context.error());
    o.stream.tls = *context;
  }
  if (!o.ws_path.empty()) {
    o.stream.ws_path = o.ws_path;
    const bool v6 = o.host.find(':') != std::string::npos;
    o.stream.ws_host = (v6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
  }
  return {};
}

template <class Props>
tl::expected<void, std::string> parse_props(const std::vector<std::string>& text, Props& out) {
  out.clear();
  for (const auto& t : text) {
    auto kv = parse_user_property(t);
    if (!kv) return tl::unexpected(kv.error());
    out.push_back(*kv);
  }
  return {};
}

tl::expected<void, std::string> check_qos(int qos, const char* what) {
  if (qos < 0 || qos > 2) return tl::unexpected(std::string(what) + " must be 0, 1 or 2");
  return {};
}
}  // namespace

std::optional<mqtt::Version> parse_version(std::string_view t) {
  if (t == "3.1.1" || t == "311" || t == "4" || t == "mqttv311" || t == "v311") return mqtt::Version::v311;
  if (t == "5" || t == "5.0" || t == "mqttv5" || t == "v5") return mqtt::Version::v5;
  if (t == "3.1" || t == "31" || t == "3" || t == "mqttv31") return mqtt::Version::v31;
  return std::nullopt;
}

tl::expected<std::pair<std::string, std::string>, std::string> parse_user_property(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return tl::unexpected("user property must be KEY=VALUE, got '" + std::string(text) + "'");
  return std::pair{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

void add_connect_options(CLI::App& app, ConnectOptions& o, bool with_will) {
  add_common_connect(app, o);
  app.add_option("-i,--id", o.client_id, "Client identifier (default: generated)");
  app.add_flag("-c,--no-clean", o.no_clean,
               "Keep the session: clean session (3.1.1) / clean start (5) off");
  app.add_option("-L,--url", o.url,
                 "mqtt://[user[:password]@]host[:port]/topic: host, port, user, password and topic at once");
  app.add_option("--unix", o.unix_path, "Connect through this Unix-domain socket instead of TCP (replaces -h, -p)");
  // mosquitto's -D takes three words, or four for user-property; CLI11 hands each
  // occurrence over separately (trigger_on_parse), checked in finalize().
  app.add_option_function<std::vector<std::string>>(
         "-D,--property", [&o](const std::vector<std::string>& words) { o.property_args.push_back(words); },
         "MQTT 5 property: -D COMMAND IDENTIFIER VALUE, or -D COMMAND user-property NAME VALUE "
         "(COMMAND: connect, publish, subscribe, unsubscribe, disconnect, will; repeatable; implies -V 5)")
      ->expected(0, 4)
      ->trigger_on_parse()
      ->type_name("CMD ID [NAME] VALUE");
  if (with_will) {
    app.add_option("--will-topic", o.will_topic, "Will topic");
    app.add_option("--will-payload", o.will_payload, "Will payload");
    app.add_option("--will-qos", o.will_qos, "Will QoS")->capture_default_str();
    app.add_flag("--will-retain", o.will_retain, "Will is retained");
  }
}

void add_pub_options(CLI::App& app, PubOptions& o) {
  app.set_help_flag("--help", "Print this help message and exit");
  add_connect_options(app, o.conn);
  app.add_option("-t,--topic", o.topic, "Topic to publish to (or give it in -L)");
  app.add_option("-m,--message", o.message, "Message payload");
  app.add_option("-f,--file", o.file, "Send the contents of a file as the message");
  app.add_flag("-l,--stdin-line", o.stdin_lines, "Send each line of stdin as a message");
  app.add_flag("-s,--stdin-file", o.stdin_whole, "Send all of stdin as one message");
  app.add_flag("-n,--null-message", o.null_message, "Send an empty message");
  app.add_option("-q,--qos", o.qos, "QoS 0, 1 or 2")->capture_default_str();
  app.add_flag("-r,--retain", o.retain, "Retain the message");
  app.add_option("--repeat", o.repeat, "Publish each message this many times")->capture_default_str();
  app.add_option("--repeat-delay", o.repeat_delay_s, "Seconds between repeated publishes");
  app.add_option("--user-property", o.user_props_text,
                 "User property KEY=VALUE on PUBLISH (MQTT 5; same as -D publish user-property KEY VALUE)");
  app.add_option("--content-type", o.content_type, "Content type (MQTT 5)");
  app.add_option("-e,--message-expiry", o.message_expiry, "Message expiry interval in seconds (MQTT 5)");
  app.add_option("--response-topic", o.response_topic, "Response topic (MQTT 5)");
  app.add_option("--correlation-data", o.correlation_data, "Correlation data (MQTT 5)");
  app.add_flag("-d,--debug", o.verbose, "Print packets sent and received to stderr");
}

void add_sub_options(CLI::App& app, SubOptions& o) {
  app.set_help_flag("--help", "Print this help message and exit");
  add_connect_options(app, o.conn);
  app.add_option("-t,--topic", o.topics, "Topic filter to subscribe to (repeatable; or give one in -L)");
  app.add_option("-q,--qos", o.qos, "Requested QoS 0, 1 or 2")->capture_default_str();
  app.add_option("-C,--count", o.count, "Exit after receiving this many messages");
  app.add_option("-W,--wait", o.wait_s,
                 "Exit with code 4 when no message arrives for this many seconds");
  app.add_flag("-v,--verbose", o.verbose,
               "-v prints 'topic payload'; -vv adds QoS, retain, packet id and properties");
  app.add_flag("-E,--exit-after-subscribe", o.exit_after_subscribe, "Exit once SUBACK arrives");
  app.add_flag("--no-local", o.no_local, "No local (MQTT 5)");
  app.add_flag("--retain-as-published", o.retain_as_published, "Retain as published (MQTT 5)");
  app.add_option("--retain-handling", o.retain_handling, "Retain handling 0, 1 or 2 (MQTT 5)");
  app.add_flag("-R,--no-retained", o.skip_retained, "Do not print messages flagged retained");
  app.add_flag("--retained-only", o.retained_only,
               "Print only retained messages; exit at the first message without the retain flag");
  app.add_option("-T,--filter-out", o.filter_out, "Do not print messages whose topic matches this filter (repeatable)");
  app.add_option("-U,--unsubscribe", o.unsubscribe,
                 "Unsubscribe from this filter after subscribing (repeatable; with -c edits a persistent session)");
  app.add_flag("-N", o.no_eol, "Do not print a newline after each message");
  app.add_option("-F", o.format_text,
                 "Output format, as mosquitto_sub -F: %t topic, %p payload, %q, %r, %m, %l, %x/%X hex, %I, %U, "
                 "%j/%J JSON, %P %A %E %C %D %F %R %S properties, @ strftime, \\n \\t escapes; overrides -v");
  app.add_option("--user-property", o.user_props_text,
                 "User property KEY=VALUE on SUBSCRIBE (MQTT 5; same as -D subscribe user-property KEY VALUE)");
  app.add_flag("-d,--debug", o.debug, "Print packets sent and received to stderr");
}

void add_bench_options(CLI::App& app, BenchOptions& o) {
  app.set_help_flag("--help", "Print this help message and exit");
  add_common_connect(app, o.conn);
  app.add_option("-i,--id", o.conn.client_id,
                 "Client id template (%i = client number, default hmq-bench-<mode>-<pid>-%i)");
  app.add_flag("--no-clean", o.conn.no_clean, "Clean start / clean session off");
  app.add_option("-c,--clients", o.clients, "Number of clients")->capture_default_str();
  app.add_option("--threads", o.threads, "Worker threads (0 = one per CPU)")->capture_default_str();
  app.add_option("-n,--start-number", o.start_number, "First client number for %i")->capture_default_str();
  app.add_option("--json", o.json_file, "Write the results as JSON to this file");
  app.add_option("--ready-file", o.ready_file,
                 "Create this file once every client is connected (and subscribed)");
  app.add_option("--connect-rate", o.connect_rate, "New connections per second (0 = unlimited)")
      ->capture_default_str();
  app.add_option("--max-pending", o.max_pending_connects, "Connections being set up at once")
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds to run (0 = until --count or Ctrl-C)")
      ->capture_default_str();
  app.add_flag("--quiet", o.quiet, "No live progress");
  if (o.mode == BenchMode::Conn) return;
  app.add_option("-t,--topic", o.topic, "Topic (pub) or filter (sub); %i = client number, %c = client id")
      ->capture_default_str();
  app.add_option("-q,--qos", o.qos, "QoS 0, 1 or 2")->capture_default_str();
  if (o.mode == BenchMode::Pub) {
    app.add_option("-s,--size", o.payload_size, "Payload size in bytes (at least 16)")->capture_default_str();
    app.add_option("--rate", o.rate, "Messages per second per publisher (0 = unlimited)")
        ->capture_default_str();
    app.add_option("-L,--count", o.count, "Messages per publisher (0 = unlimited)");
    app.add_option("--inflight", o.inflight, "QoS 1/2 window of unacknowledged messages per publisher")
        ->capture_default_str();
    app.add_flag("--retain", o.retain, "Publish retained");
    app.add_option("--drain", o.drain_s, "Seconds to wait for outstanding acknowledgements at the end")
        ->capture_default_str();
  } else {
    app.add_option("-g,--group", o.group, "Shared subscription group ($share/GROUP/topic)");
    app.add_option("--rate", o.rate,
                   "Read at most this many messages per second per subscriber (0 = as fast as they come); "
                   "unread data stays in the socket, so TCP backpressure reaches the broker")
        ->capture_default_str();
    app.add_option("-L,--count", o.count, "Stop after this many messages in total (0 = unlimited)");
    app.add_option("--idle", o.idle_s, "Stop after this many seconds without messages (from the end of setup until the first)");
    app.add_flag("--subscribe-only", o.subscribe_only,
                 "Disconnect right after SUBACK (sets up persistent sessions)");
    app.add_flag("--no-subscribe", o.no_subscribe, "Do not subscribe: resume an existing session");
  }
}

tl::expected<void, std::string> finalize(ConnectOptions& o) {
  if (!o.url.empty()) {
    if (!o.unix_path.empty()) return tl::unexpected(std::string("--unix replaces -h, -p and -L: give only one"));
    auto url = parse_broker_url(o.url);
    if (!url) return tl::unexpected(url.error());
    o.host = url->host;
    o.port = url->port;
    if (url->username) o.username = url->username;
    if (url->password) o.password = url->password;
    o.url_topic = url->topic;
    if (url->tls) o.tls = true;
    if (url->websocket && o.ws_path.empty()) o.ws_path = "/mqtt";
  }
  // -D makes the client an MQTT 5 client unless -V says otherwise, which is an error.
  if (o.version_text.empty()) o.version_text = o.property_args.empty() ? "3.1.1" : "5";
  auto v = parse_version(o.version_text);
  if (!v) return tl::unexpected("unknown MQTT version '" + o.version_text + "' (use 3.1.1 or 5)");
  o.version = *v;
  if (!o.property_args.empty() && o.version != mqtt::Version::v5)
    return tl::unexpected("-D only valid with MQTT v5 (-V " + o.version_text + " given)");
  o.props = PacketProperties{};
  for (const auto& words : o.property_args) {
    if (auto r = add_property_argument(words, o.props); !r) return r;
  }
  o.clean_start = !o.no_clean;
  if (o.port == 0 && o.unix_path.empty()) return tl::unexpected(std::string("port must not be 0"));
  if (auto r = finalize_stream(o); !r) return r;
  if (auto r = check_qos(o.will_qos, "--will-qos"); !r) return r;
  if (auto r = parse_props(o.connect_user_props_text, o.connect_user_props); !r) return r;
  if (o.version != mqtt::Version::v5 && (o.session_expiry || !o.connect_user_props.empty()))
    return tl::unexpected(std::string("--session-expiry and --connect-property need -V 5"));
  mqtt::Properties own;
  own.session_expiry_interval = o.session_expiry;
  own.user_properties = o.connect_user_props;
  if (auto r = merge_properties(own, o.props.connect, "CONNECT"); !r) return r;
  if (o.will_topic.empty() && o.props.will != mqtt::Properties{})
    return tl::unexpected(std::string("Will properties given, but no will topic given (--will-topic)"));
  if (o.password && !o.username && o.version != mqtt::Version::v5)
    return tl::unexpected(std::string("a password needs a username in MQTT 3.1.1"));
  if (o.timeout_s <= 0) return tl::unexpected(std::string("--timeout must be positive"));
  return {};
}

tl::expected<void, std::string> finalize(PubOptions& o) {
  if (auto r = finalize(o.conn); !r) return r;
  if (!o.conn.url_topic.empty()) {
    if (!o.topic.empty()) return tl::unexpected(std::string("give the topic with -t or in the -L URL, not both"));
    o.topic = o.conn.url_topic;
  }
  if (o.topic.empty()) return tl::unexpected(std::string("You must specify a topic to publish to (-t or -L)"));
  if (auto r = check_qos(o.qos, "--qos"); !r) return r;
  int sources = (o.message ? 1 : 0) + (!o.file.empty() ? 1 : 0) + (o.stdin_lines ? 1 : 0) +
                (o.stdin_whole ? 1 : 0) + (o.null_message ? 1 : 0);
  if (sources != 1)
    return tl::unexpected(std::string("give exactly one message source: -m, -f, -l, -s or -n"));
  if (o.repeat < 1) return tl::unexpected(std::string("--repeat must be at least 1"));
  if (auto r = parse_props(o.user_props_text, o.user_props); !r) return r;
  bool v5_props = !o.user_props.empty() || !o.content_type.empty() || o.message_expiry ||
                  !o.response_topic.empty() || !o.correlation_data.empty();
  if (v5_props && o.conn.version != mqtt::Version::v5)
    return tl::unexpected(std::string("PUBLISH properties need -V 5"));
  mqtt::Properties own;
  own.user_properties = o.user_props;
  if (!o.content_type.empty()) own.content_type = o.content_type;
  own.message_expiry_interval = o.message_expiry;
  if (!o.response_topic.empty()) own.response_topic = o.response_topic;
  if (!o.correlation_data.empty()) own.correlation_data = o.correlation_data;
  if (auto r = merge_properties(own, o.conn.props.publish, "PUBLISH"); !r) return r;
  return {};
}

tl::expected<void, std::string> finalize(SubOptions& o) {
  if (auto r = finalize(o.conn); !r) return r;
  if (!o.conn.url_topic.empty()) o.topics.push_back(o.conn.url_topic);
  if (o.topics.empty() && o.unsubscribe.empty())
    return tl::unexpected(std::string("You must specify a topic to subscribe to (-t, -L or -U)"));
  if (auto r = check_qos(o.qos, "--qos"); !r) return r;
  if (o.retain_handling < 0 || o.retain_handling > 2)
    return tl::unexpected(std::string("--retain-handling must be 0, 1 or 2"));
  if (auto r = parse_props(o.user_props_text, o.user_props); !r) return r;
  if ((o.no_local || o.retain_as_published || o.retain_handling || !o.user_props.empty()) &&
      o.conn.version != mqtt::Version::v5)
    return tl::unexpected(
        std::string("--no-local, --retain-as-published, --retain-handling and --user-property need -V 5"));
  mqtt::Properties own;
  own.user_properties = o.user_props;
  if (auto r = merge_properties(own, o.conn.props.subscribe, "SUBSCRIBE"); !r) return r;
  if (o.wait_s < 0) return tl::unexpected(std::string("--wait must not be negative"));
  if (o.skip_retained && o.retained_only)
    return tl::unexpected(std::string("-R and --retained-only exclude each other"));
  for (const auto& f : o.filter_out) {
    if (!mqtt::valid_topic_filter(f))
      return tl::unexpected("Invalid filter topic '" + f + "', are all '+' and '#' wildcards correct?");
  }
  for (const auto& f : o.unsubscribe) {
    if (!mqtt::valid_topic_filter(f))
      return tl::unexpected("Invalid unsubscribe topic '" + f + "', are all '+' and '#' wildcards correct?");
  }
  o.format.reset();
  if (o.format_text) {
    auto f = parse_output_format(*o.format_text);
    if (!f) return tl::unexpected(f.error());
    o.format = std::move(*f);
  }
  return {};
}

tl::expected<void, std::string> finalize(BenchOptions& o) {
  if (auto r = finalize(o.conn); !r) return r;
  if (o.clients < 1) return tl::unexpected(std::string("--clients must be at least 1"));
  if (o.threads < 0) return tl::unexpected(std::string("--threads must not be negative"));
  if (o.threads == 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (o.threads > o.clients) o.threads = o.clients;
  if (auto r = check_qos(o.qos, "--qos"); !r) return r;
  if (o.payload_size < 16) return tl::unexpected(std::string("--size must be at least 16 (the stamp)"));
  if (o.rate < 0 || o.duration_s < 0 || o.connect_rate < 0 || o.idle_s < 0)
    return tl::unexpected(std::string("rates and durations must not be negative"));
  if (o.inflight < 1 || o.inflight > 65535) return tl::unexpected(std::string("--inflight must be 1..65535"));
  if (o.max_pending_connects < 1) return tl::unexpected(std::string("--max-pending must be at least 1"));
  if (o.subscribe_only && o.no_subscribe)
    return tl::unexpected(std::string("--subscribe-only and --no-subscribe exclude each other"));
  if (o.conn.client_id.empty()) {
    const char* mode = o.mode == BenchMode::Pub ? "pub" : o.mode == BenchMode::Sub ? "sub" : "conn";
    o.conn.client_id = std::string("hmq-bench-") + mode + "-" + std::to_string(getpid()) + "-%i";
  }
  return {};
}

}  // namespace harbor::tools
