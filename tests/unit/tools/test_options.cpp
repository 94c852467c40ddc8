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
                   {"-h", "localhost", "-p", "1884", "-t", "a/b", "-m", "hi", "-q", "1", "-r", "-V", "5", "-D",
                    "k=v=w", "-i", "me", "-c", "-x", "60", "-u", "user", "-P", "pw"});
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
}

TEST(Options, PubRejectsBadCombinations) {
  PubOptions a;
  EXPECT_TRUE(parse(a, add_pub_options, {"-t", "a"}));  // no message source
  PubOptions b;
  EXPECT_TRUE(parse(b, add_pub_options, {"-t", "a", "-m", "x", "-q", "3"}));
  PubOptions c;
  EXPECT_TRUE(parse(c, add_pub_options, {"-t", "a", "-m", "x", "-D", "k=v"}));  // needs -V 5
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

TEST(Options, VersionNames) {
  EXPECT_EQ(parse_version("3.1.1"), Version::v311);
  EXPECT_EQ(parse_version("mqttv5"), Version::v5);
  EXPECT_EQ(parse_version("4"), Version::v311);
  EXPECT_FALSE(parse_version("2"));
  EXPECT_FALSE(parse_user_property("novalue"));
  EXPECT_FALSE(parse_user_property("=v"));
}
