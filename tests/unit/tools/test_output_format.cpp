// -F rendering. Expected strings were checked against mosquitto_sub 2.0.11 (Debian 12)
// printing the same message, except where a comment says otherwise.
#include <gtest/gtest.h>

#include "tools/output_format.hpp"

using namespace harbor::tools;
using harbor::mqtt::Publish;

namespace {
ReceiveTime fixed_time() {
  ReceiveTime t;
  t.unix_s = 1796158841;  // 2026-12-01T21:00:41Z
  t.ns = 140565219;
  time_t s = static_cast<time_t>(t.unix_s);
  gmtime_r(&s, &t.local);
  return t;
}

Publish message() {
  Publish p;
  p.topic = "j/a";
  p.qos = 1;
  p.retain = true;
  p.packet_id = 1;
  p.payload = "he\"l\\lo\x01\ttab \xc3\xa9";
  p.props.payload_format_indicator = 1;
  p.props.message_expiry_interval = 999;
  p.props.content_type = "text/plain";
  p.props.response_topic = "rt";
  p.props.correlation_data = "cd";
  p.props.user_properties = {{"k1", "v1"}, {"k2", "v2"}};
  return p;
}

std::string render(std::string_view format, const Publish& p, std::string* errors = nullptr) {
  auto f = parse_output_format(format);
  EXPECT_TRUE(f) << f.error();
  if (!f) return {};
  std::string out, err;
  render_output_format(*f, p, fixed_time(), out, err);
  if (errors) *errors = err;
  return out;
}
}  // namespace

TEST(OutputFormat, MessageFields) {
  Publish p = message();
  EXPECT_EQ(render("%t %p", p), "j/a he\"l\\lo\x01\ttab \xc3\xa9");
  EXPECT_EQ(render("%q%r|%m|%l", p), "11|1|15");
  EXPECT_EQ(render("%x", p), "6865226c5c6c6f010974616220c3a9");
  EXPECT_EQ(render("%X", p), "6865226C5C6C6F010974616220C3A9");
  EXPECT_EQ(render("%P|%C|%E|%F|%R|%D", p), "k1:v1 k2:v2|text/plain|999|1|rt|cd");
  EXPECT_EQ(render("100%% %%t", p), "100% %t");
}

TEST(OutputFormat, WidthsFlagsAndPrecision) {
  Publish p = message();
  EXPECT_EQ(render("%10t|%-10t|%5.2t", p), "       j/a|j/a       |   j/");
  EXPECT_EQ(render("%010l|%-5m|", p), "0000000015|1    |");
  // A width is also the maximum for %p.
  EXPECT_EQ(render("%10p|%3p|%-8p", p), "he\"l\\lo\x01\tt|he\"|he\"l\\lo\x01");
  Publish short_payload;
  short_payload.topic = "s";
  short_payload.payload = "ab";
  EXPECT_EQ(render("%5p|%-5p|%05p", short_payload), "   ab|ab   |000ab");
  // Absent integer properties print the width in pad characters, absent strings blanks.
  EXPECT_EQ(render("[%5A|%05S|%3C|%4R|%D]", short_payload), "[     |00000|   ||]");
  // mosquitto 2.0.11 prints only half the bytes with a width (a bug); a width is the most
  // hex digits printed, padded when the payload is shorter.
  EXPECT_EQ(render("%6x|%-6X|%3x", short_payload), "  6162|6162  | 61");
}

TEST(OutputFormat, Times) {
  Publish p = message();
  EXPECT_EQ(render("%I", p), "2026-12-01T21:00:41+0000");
  EXPECT_EQ(render("%U", p), "1796158841.140565219");
  EXPECT_EQ(render("@Y@@@N", p), "2026@140565219");
  EXPECT_EQ(render("@H:@M:@S", p), "21:00:41");
}

TEST(OutputFormat, Escapes) {
  Publish p = message();
  EXPECT_EQ(render("a\\tb\\nc\\\\d", p), "a\tb\nc\\d");
  EXPECT_EQ(render("\\0\\a\\e\\r\\v", p), std::string("\0\a\033\r\v", 5));
}

TEST(OutputFormat, Json) {
  Publish p = message();
  EXPECT_EQ(render("%j", p),
            "{\"tst\":\"2026-12-01T21:00:41.140565Z+0000\",\"topic\":\"j/a\",\"qos\":1,\"retain\":1,"
            "\"payloadlen\":15,\"mid\":1,\"properties\":{\"payload-format-indicator\":1,"
            "\"message-expiry-interval\":999,\"content-type\":\"text/plain\",\"response-topic\":\"rt\","
            "\"correlation-data\":\"cd\",\"user-properties\":{\"k1\":\"v1\",\"k2\":\"v2\"}},"
            "\"payload\":\"he\\\"l\\\\lo\\u0001\\ttab \xc3\xa9\"}");

  Publish j;
  j.topic = "j/b";
  j.retain = true;
  j.payload = R"({"a": 1.0, "b":[1,2 ,"x"], "c": 1e5, "d": 0.1, "e": true, "f": null, "g": "q\"\n"})";
  std::string err;
  // cJSON style: numbers as doubles, integral ones printed as integers, no blanks.
  EXPECT_EQ(render("%J", j, &err),
            "{\"tst\":\"2026-12-01T21:00:41.140565Z+0000\",\"topic\":\"j/b\",\"qos\":0,\"retain\":1,"
            "\"payloadlen\":" + std::to_string(j.payload.size()) +
                ",\"payload\":{\"a\":1,\"b\":[1,2,\"x\"],\"c\":100000,\"d\":0.1,\"e\":true,\"f\":null,"
                "\"g\":\"q\\\"\\n\"}}");
  EXPECT_EQ(err, "");

  // Not JSON: the field prints nothing, the rest does, and stderr gets mosquitto's line.
  EXPECT_EQ(render("<%J>", p, &err), "<>");
  EXPECT_EQ(err, "Error: Message payload is not valid JSON on topic j/a.\n");

  Publish empty;
  empty.topic = "e";
  empty.props.subscription_identifiers = {7};
  EXPECT_EQ(render("%j", empty),
            "{\"tst\":\"2026-12-01T21:00:41.140565Z+0000\",\"topic\":\"e\",\"qos\":0,\"retain\":0,"
            "\"payloadlen\":0,\"properties\":{\"subscription-identifier\":7},\"payload\":null}");
}

TEST(OutputFormat, ParseErrorsAreMosquittos) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"%", "Incomplete format specifier."},
      {"abc%-", "Incomplete format specifier."},
      {"%10", "Incomplete format specifier."},
      {"%5.", "Incomplete format specifier."},
      {"%z", "Invalid format specifier 'z'."},
      {"@", "Incomplete format specifier."},
      {"x\\", "Incomplete escape specifier."},
      {"\\q", "Invalid escape specifier 'q'."},
  };
  for (const auto& [format, error] : cases) {
    auto f = parse_output_format(format);
    ASSERT_FALSE(f) << format;
    EXPECT_EQ(f.error(), error) << format;
  }
  EXPECT_TRUE(parse_output_format(""));
}
