#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "tools/options.hpp"

using namespace harbor::tools;
using harbor::mqtt::Version;

namespace {
template <class Opts, class Add>
std::optional<std::string> parse(Opts& o, Add add, std::vector<std::string> args) {
  CLI::App app;
  add(app, o);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return std::string("parse: ") + e.what();
  }
  auto r = finalize(o);
  if (!r) return r.error();
  return std::nullopt;
}
}  // namespace

TEST(Options, PubMosquittoStyle) {
  PubOptions o;
  auto err = parse(o, add_pub_options,
                   {"-h", "localhost", "-p", "1884", "-t", "a/b", "-m", "hi", "-q", "1", "-r", "-V", "5",
                    "--user-property", "k=v=w", "-i", "me", "-c", "-x", "60", "-u", "user", "-P", "pw"});
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(o.conn.host, "localhost");
  EXPECT_EQ(o.conn.port, 1884);
  EXPECT_EQ(o.conn.version, Version::v5);
  EXPECT_FALSE(o.conn.clean_start);
  EXPECT_EQ(o.conn.session_expiry, 60u);
  EXPECT_EQ(o.qos, 1);
  EXPECT_TRUE(o.retain);
  ASSERT_EQ(o.user_props.size(), 1u);
  EXPECT_EQ(o.user_props[0].first, "k");
  EXPECT_EQ(o.user_props[0].second, "v=w");
  EXPECT_EQ(o.conn.username, "user");
  // -x and the separate PUBLISH options land in the packets' properties.
  EXPECT_EQ(o.conn.props.connect.session_expiry_interval, 60u);
  ASSERT_EQ(o.conn.props.publish.user_properties.size(), 1u);
  EXPECT_EQ(o.conn.props.publish.user_properties[0].second, "v=w");
}

TEST(Options, PubRejectsBadCombinations) {
  PubOptions a;
  EXPECT_TRUE(parse(a, add_pub_options, {"-t", "a"}));  // no message source
  PubOptions b;
  EXPECT_TRUE(parse(b, add_pub_options, {"-t", "a", "-m", "x", "-q", "3"}));
  PubOptions c;
  EXPECT_TRUE(parse(c, add_pub_options, {"-t", "a", "-m", "x", "--user-property", "k=v"}));  // needs -V 5
  PubOptions d;
  EXPECT_TRUE(parse(d, add_pub_options, {"-t", "a", "-m", "x", "-V", "6"}));
  PubOptions e;
  EXPECT_TRUE(parse(e, add_pub_options, {"-m", "x"}));  // -t required
}

TEST(Options, SubCountsVerbosity) {
  SubOptions o;
  auto err = parse(o, add_sub_options, {"-t", "a/#", "-t", "b", "-vv", "-C", "5", "-W", "2.5"});
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(o.topics.size(), 2u);
  EXPECT_EQ(o.verbose, 2);
  EXPECT_EQ(o.count, 5u);
  EXPECT_DOUBLE_EQ(o.wait_s, 2.5);
  EXPECT_EQ(o.conn.version, Version::v311);
}

TEST(Options, BenchDefaultsAndValidation) {
  BenchOptions o;
  o.mode = BenchMode::Pub;
  auto err = parse(o, add_bench_options,
                   {"-c", "10", "-t", "bench/%i", "-q", "1", "-s", "100", "--rate", "50", "--threads", "4", "--duration",
                    "3", "--inflight", "32"});
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(o.clients, 10);
  EXPECT_EQ(o.threads, 4);
  EXPECT_EQ(o.payload_size, 100u);
  EXPECT_DOUBLE_EQ(o.rate, 50);
  EXPECT_EQ(o.inflight, 32);
  EXPECT_NE(o.conn.client_id.find("%i"), std::string::npos);

  BenchOptions small;
  small.mode = BenchMode::Pub;
  EXPECT_TRUE(parse(small, add_bench_options, {"-s", "8"}));

  BenchOptions sub;
  sub.mode = BenchMode::Sub;
  EXPECT_FALSE(parse(sub, add_bench_options, {"-g", "grp", "--idle", "2"}));
  EXPECT_EQ(sub.group, "grp");
  BenchOptions threads;
  threads.mode = BenchMode::Conn;
  EXPECT_FALSE(parse(threads, add_bench_options, {"-c", "1", "--threads", "8"}));
  EXPECT_EQ(threads.threads, 1);  // never more threads than clients
}

TEST(Options, BenchSubReadRate) {
  BenchOptions paced;
  paced.mode = BenchMode::Sub;
  auto err = parse(paced, add_bench_options, {"-t", "bench/#", "-q", "1", "--rate", "2500.5"});
  ASSERT_FALSE(err) << *err;
  EXPECT_DOUBLE_EQ(paced.rate, 2500.5);

  BenchOptions unpaced;
  unpaced.mode = BenchMode::Sub;
  ASSERT_FALSE(parse(unpaced, add_bench_options, {"-t", "bench/#"}));
  EXPECT_DOUBLE_EQ(unpaced.rate, 0);  // default: read as fast as messages come

  BenchOptions negative;
  negative.mode = BenchMode::Sub;
  EXPECT_TRUE(parse(negative, add_bench_options, {"--rate", "-5"}));
  BenchOptions not_a_number;
  not_a_number.mode = BenchMode::Sub;
  EXPECT_TRUE(parse(not_a_number, add_bench_options, {"--rate", "fast"}));
  BenchOptions conn;  // bench conn has no --rate (it has --connect-rate)
  conn.mode = BenchMode::Conn;
  EXPECT_TRUE(parse(conn, add_bench_options, {"--rate", "10"}));

  CLI::App app;
  BenchOptions help;
  help.mode = BenchMode::Sub;
  add_bench_options(app, help);
  EXPECT_NE(app.help().find("backpressure"), std::string::npos);
}

TEST(Options, VersionNames) {
  EXPECT_EQ(parse_version("3.1.1"), Version::v311);
  EXPECT_EQ(parse_version("mqttv5"), Version::v5);
  EXPECT_EQ(parse_version("4"), Version::v311);
  EXPECT_FALSE(parse_version("2"));
  EXPECT_FALSE(parse_user_property("novalue"));
  EXPECT_FALSE(parse_user_property("=v"));
}

TEST(Options, PropertyArgumentsAreGroupedPerOccurrence) {
  PubOptions o;
  auto err = parse(o, add_pub_options,
                   {"-t", "a", "-m", "x", "-D", "publish", "user-property", "a", "b", "-D", "connect",
                    "receive-maximum", "10", "-D", "PUBLISH", "content-type", "text/plain", "-D", "publish",
                    "user-property", "c", "d", "-q", "1"});
  ASSERT_FALSE(err) << *err;
  ASSERT_EQ(o.conn.property_args.size(), 4u);
  EXPECT_EQ(o.conn.version, Version::v5);  // -D implies MQTT 5, as in mosquitto
  EXPECT_EQ(o.conn.version_text, "5");
  EXPECT_EQ(o.qos, 1);
  EXPECT_EQ(o.conn.props.connect.receive_maximum, 10);
  EXPECT_EQ(o.conn.props.publish.content_type, "text/plain");
  harbor::mqtt::UserProperties want{{"a", "b"}, {"c", "d"}};
  EXPECT_EQ(o.conn.props.publish.user_properties, want);
}

TEST(Options, PropertyArgumentErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases = {
      {{"-D", "connect", "receive-maximum", "10", "-V", "3.1.1"}, "-D only valid with MQTT v5 (-V 3.1.1 given)"},
      {{"-D", "connect"}, "--property argument given but not enough arguments specified."},
      {{"-D", "connect", "user-property", "k"}, "--property argument given but not enough arguments specified."},
      {{"-D", "foo", "receive-maximum", "1"}, "Invalid command given in --property argument."},
      {{"-D", "connect", "content-type", "x"}, "content-type property not allowed for connect in --property argument."},
      {{"-D", "publish", "content-type", "a", "--content-type", "b"},
       "Error in PUBLISH properties: content-type given both by -D and by its own option."},
      {{"-D", "will", "content-type", "a"}, "Will properties given, but no will topic given (--will-topic)"},
  };
  for (const auto& c : cases) {
    PubOptions o;
    std::vector<std::string> args = {"-t", "a", "-m", "x"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto err = parse(o, add_pub_options, args);
    ASSERT_TRUE(err) << c.error;
    EXPECT_EQ(*err, c.error);
  }
}

TEST(Options, TlsAndWebSocketOptions) {
  BenchOptions plain;
  ASSERT_FALSE(parse(plain, add_bench_options, {}).has_value());
  EXPECT_FALSE(plain.conn.stream.any());  // plain TCP: no stream in the way
  BenchOptions ws;
  ASSERT_FALSE(parse(ws, add_bench_options, {"-h", "::1", "-p", "9", "--ws", "/x"}).has_value());
  EXPECT_EQ(ws.conn.stream.ws_host, "[::1]:9");
  PubOptions missing;
  auto err =
      parse(missing, add_pub_options, {"--cafile", "/nonexistent/ca.pem", "-t", "a", "-m", "x"});
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("/nonexistent/ca.pem"), std::string::npos) << *err;
  PubOptions half;
  EXPECT_EQ(parse(half, add_pub_options, {"--cert", "c.pem", "-t", "a", "-m", "x"}),
            "--cert and --key go together");
  PubOptions insecure;
  EXPECT_EQ(parse(insecure, add_pub_options, {"--insecure", "-t", "a", "-m", "x"}),
            "--insecure needs TLS (--cafile, --tls or mqtts://)");
  PubOptions bad_path;
  EXPECT_EQ(parse(bad_path, add_pub_options, {"--ws", "mqtt", "-t", "a", "-m", "x"}),
            "--ws takes a path starting with '/', got 'mqtt'");
}

TEST(Options, UrlSetsHostPortCredentialsAndTopic) {
  PubOptions o;
  auto err = parse(o, add_pub_options, {"-L", "mqtt://ann:secret@broker.example:1999/a/b", "-m", "x"});
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(o.conn.host, "broker.example");
  EXPECT_EQ(o.conn.port, 1999);
  EXPECT_EQ(o.conn.username, "ann");
  EXPECT_EQ(o.conn.password, "secret");
  EXPECT_EQ(o.topic, "a/b");

  PubOptions both;
  EXPECT_EQ(parse(both, add_pub_options, {"-L", "mqtt://h/a", "-t", "b", "-m", "x"}),
            "give the topic with -t or in the -L URL, not both");
  PubOptions tls;
  auto tls_err = parse(tls, add_pub_options, {"-L", "mqtts://h/a", "-m", "x"});
  ASSERT_FALSE(tls_err) << *tls_err;
  EXPECT_TRUE(tls.conn.tls);
  EXPECT_EQ(tls.conn.port, 8883);
  EXPECT_TRUE(tls.conn.stream.tls);  // the system's CAs
  EXPECT_TRUE(tls.conn.stream.ws_path.empty());
  PubOptions ws;
  ASSERT_FALSE(parse(ws, add_pub_options, {"-L", "ws://h/a", "-m", "x"}));
  EXPECT_EQ(ws.conn.stream.ws_path, "/mqtt");
  EXPECT_EQ(ws.conn.stream.ws_host, "h:8083");
  EXPECT_FALSE(ws.conn.stream.tls);
  PubOptions with_unix;
  EXPECT_TRUE(parse(with_unix, add_pub_options, {"-L", "mqtt://h/a", "--unix", "/tmp/s", "-m", "x"}));

  SubOptions s;
  ASSERT_FALSE(parse(s, add_sub_options, {"-L", "mqtt://h:1884/x/#", "-t", "y"}));
  EXPECT_EQ(s.topics, (std::vector<std::string>{"y", "x/#"}));
  EXPECT_EQ(s.conn.port, 1884);
}

TEST(Options, SubMosquittoOutputAndFilterOptions) {
  SubOptions o;
  auto err = parse(o, add_sub_options,
                   {"-t", "a/#", "-T", "a/secret/#", "-T", "a/+/x", "-U", "old/#", "-N", "--retained-only", "-F",
                    "%t=%p", "--unix", "/run/mosq.sock"});
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(o.filter_out.size(), 2u);
  EXPECT_EQ(o.unsubscribe, std::vector<std::string>{"old/#"});
  EXPECT_TRUE(o.no_eol);
  EXPECT_TRUE(o.retained_only);
  ASSERT_TRUE(o.format);
  EXPECT_EQ(o.conn.unix_path, "/run/mosq.sock");

  SubOptions unsub_only;
  EXPECT_FALSE(parse(unsub_only, add_sub_options, {"-U", "a", "-c", "-i", "me"}));
  SubOptions nothing;
  EXPECT_TRUE(parse(nothing, add_sub_options, {"-v"}));
  SubOptions bad_filter;
  EXPECT_EQ(parse(bad_filter, add_sub_options, {"-t", "a", "-T", "a/#/b"}),
            "Invalid filter topic 'a/#/b', are all '+' and '#' wildcards correct?");
  SubOptions bad_format;
  EXPECT_EQ(parse(bad_format, add_sub_options, {"-t", "a", "-F", "%z"}), "Invalid format specifier 'z'.");
  SubOptions both_r;
  EXPECT_TRUE(parse(both_r, add_sub_options, {"-t", "a", "-R", "--retained-only"}));
  SubOptions empty_format;
  ASSERT_FALSE(parse(empty_format, add_sub_options, {"-t", "a", "-F", ""}));
  EXPECT_TRUE(empty_format.format);
}
