// The WebSocket opening handshake, server side (RFC 6455 §4.2): the accept key, the request
// head read at every split point, each refusal status, subprotocol choice, the head size
// limit and the finished parser.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wire/websocket_upgrade.hpp"

namespace harbor::wire {
namespace {

constexpr std::string_view kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// A request head as a request line and its header fields; text() adds the line ends.
struct Request {
  std::string request_line = "GET /mqtt HTTP/1.1";
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Host", "broker.example:8083"}, {"Upgrade", "websocket"},
      {"Connection", "Upgrade"},       {"Sec-WebSocket-Key", std::string(kRfcKey)},
      {"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Protocol", "mqtt"},
  };

  Request& set(std::string_view name, std::string value) {
    for (auto& [n, v] : fields) {
      if (n == name) {
        v = std::move(value);
        return *this;
      }
    }
    fields.emplace_back(std::string(name), std::move(value));
    return *this;
  }
  Request& add(std::string name, std::string value) {
    fields.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  Request& remove(std::string_view name) {
    std::erase_if(fields, [&](const auto& f) { return f.first == name; });
    return *this;
  }
  std::string text(std::string_view eol = "\r\n") const {
    std::string s = request_line + std::string(eol);
    for (const auto& [n, v] : fields) s += n + ": " + v + std::string(eol);
    s += eol;
    return s;
  }
};

std::string expected_response(std::string_view accept, std::string_view subprotocol) {
  std::string r =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      std::string(accept) + "\r\n";
  if (!subprotocol.empty()) r += "Sec-WebSocket-Protocol: " + std::string(subprotocol) + "\r\n";
  return r + "\r\n";
}

UpgradeResult feed_all(std::string_view bytes, std::string path = "/mqtt",
                       size_t max_head = kDefaultMaxRequestHead) {
  UpgradeParser p(std::move(path), max_head);
  return p.feed(bytes);
}

const UpgradeRefused& refused(const UpgradeResult& r) {
  static const UpgradeRefused none{.status = 0, .response = "not refused", .reason = {}};
  const auto* x = std::get_if<UpgradeRefused>(&r);
  return x ? *x : none;
}

// Status of a refusal, 101 for Done, 0 for Incomplete.
int status_of(const UpgradeResult& r) {
  if (std::holds_alternative<UpgradeDone>(r)) return 101;
  if (const auto* x = std::get_if<UpgradeRefused>(&r)) return x->status;
  return 0;
}

// The outcome of feeding a byte stream in pieces: the result of the call that finished the
// parser and the offset in the whole stream where the head ended (Done only).
struct Outcome {
  UpgradeResult result;
  size_t head_end = 0;
  int calls_after_finish = 0;
};

Outcome feed_pieces(std::string_view stream, const std::vector<size_t>& cuts,
                    size_t max_head = kDefaultMaxRequestHead) {
  UpgradeParser p("/mqtt", max_head);
  Outcome out;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  bool finished = false;
  for (size_t end : ends) {
    UpgradeResult r = p.feed(stream.substr(start, end - start));
    if (finished) {
      ++out.calls_after_finish;
    } else if (!std::holds_alternative<UpgradeIncomplete>(r)) {
      finished = true;
      out.result = r;
      if (const auto* d = std::get_if<UpgradeDone>(&r)) out.head_end = start + d->consumed;
    } else {
      EXPECT_EQ(p.buffered(), end) << "an incomplete head keeps every byte";
      EXPECT_LE(p.buffered(), max_head);
    }
    start = end;
  }
  if (!finished) out.result = UpgradeIncomplete{};
  return out;
}

void expect_same(const UpgradeResult& a, const UpgradeResult& b, const std::string& where) {
  ASSERT_EQ(a.index(), b.index()) << where;
  if (const auto* da = std::get_if<UpgradeDone>(&a)) {
    const auto& db = std::get<UpgradeDone>(b);
    EXPECT_EQ(da->response, db.response) << where;
    EXPECT_EQ(da->subprotocol, db.subprotocol) << where;
  } else if (const auto* ra = std::get_if<UpgradeRefused>(&a)) {
    const auto& rb = std::get<UpgradeRefused>(b);
    EXPECT_EQ(ra->status, rb.status) << where;
    EXPECT_EQ(ra->response, rb.response) << where;
    EXPECT_EQ(ra->reason, rb.reason) << where;
  }
}

// RFC 6455 §1.3: the worked example.
TEST(WebSocketAcceptKey, Rfc6455Example) { EXPECT_EQ(websocket_accept_key(kRfcKey), kRfcAccept); }

TEST(WebSocketAcceptKey, UsesTheKeyAsGiven) {
  EXPECT_NE(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ== "), kRfcAccept);
  EXPECT_EQ(websocket_accept_key("").size(), 28u);
}

TEST(UpgradeParser, ValidRequest) {
  const std::string head = Request{}.text();
  UpgradeParser p("/mqtt");
  const UpgradeResult r = p.feed(head);
  const auto* done = std::get_if<UpgradeDone>(&r);
  ASSERT_NE(done, nullptr) << refused(r).reason;
  EXPECT_EQ(done->consumed, head.size());
  EXPECT_EQ(done->subprotocol, "mqtt");
  EXPECT_EQ(done->response, expected_response(kRfcAccept, "mqtt"));
  EXPECT_TRUE(p.finished());
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(UpgradeParser, BytesAfterTheHeadAreNotConsumed) {
  const std::string head = Request{}.text();
  const std::string frames = "\x82\x80\x01\x02\x03\x04GET / HTTP/1.1\r\n\r\n";
  const UpgradeResult r = feed_all(head + frames);
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r)) << refused(r).reason;
  EXPECT_EQ(std::get<UpgradeDone>(r).consumed, head.size());
}

// A head split anywhere, with frame bytes behind it, gives the same answer and ends at the
// same byte (RFC 9112 does not let TCP segment boundaries mean anything).
TEST(UpgradeParser, EverySplitPointGivesTheSameResult) {
  const std::string head = Request{}.text();
  const std::string stream = head + "\x82\x81\x00\x00\x00\x00\x10";
  const Outcome whole = feed_pieces(stream, {});
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(whole.result));
  EXPECT_EQ(whole.head_end, head.size());
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    const Outcome split = feed_pieces(stream, {cut});
    const std::string where = "cut at " + std::to_string(cut);
    expect_same(whole.result, split.result, where);
    EXPECT_EQ(split.head_end, head.size()) << where;
  }
  for (size_t a = 0; a <= head.size(); a += 7) {
    for (size_t b = a; b <= stream.size(); b += 5) {
      const Outcome split = feed_pieces(stream, {a, b});
      const std::string where = "cuts at " + std::to_string(a) + ", " + std::to_string(b);
      expect_same(whole.result, split.result, where);
      EXPECT_EQ(split.head_end, head.size()) << where;
    }
  }
}

TEST(UpgradeParser, ByteByByteGivesTheSameResult) {
  const std::string head = Request{}.text();
  UpgradeParser p("/mqtt");
  for (size_t i = 0; i + 1 < head.size(); ++i) {
    const UpgradeResult r = p.feed(std::string_view(head).substr(i, 1));
    ASSERT_TRUE(std::holds_alternative<UpgradeIncomplete>(r)) << "byte " << i;
    EXPECT_EQ(p.buffered(), i + 1);
    EXPECT_FALSE(p.finished());
  }
  const UpgradeResult r = p.feed(std::string_view(head).substr(head.size() - 1));
  const auto* done = std::get_if<UpgradeDone>(&r);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->consumed, 1u);
  expect_same(r, feed_all(head), "byte by byte");
}

TEST(UpgradeParser, BareLineFeedsAndLeadingEmptyLinesAreAccepted) {
  const std::string lf = Request{}.text("\n");
  const UpgradeResult a = feed_all(lf);
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(a)) << refused(a).reason;
  EXPECT_EQ(std::get<UpgradeDone>(a).consumed, lf.size());

  // RFC 9112 §2.2: empty lines before the request line are skipped; they are part of the head.
  const std::string leading = "\r\n\n" + Request{}.text();
  const UpgradeResult b = feed_all(leading + "rest");
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(b)) << refused(b).reason;
  EXPECT_EQ(std::get<UpgradeDone>(b).consumed, leading.size());
  expect_same(a, b, "leading empty lines");
}

TEST(UpgradeParser, QueryStringIsIgnored) {
  Request req;
  req.request_line = "GET /mqtt?client=1&x=%20 HTTP/1.1";
  EXPECT_EQ(status_of(feed_all(req.text())), 101);
}

TEST(UpgradeParser, HeaderNamesAndTokensAreCaseInsensitive) {
  Request req;
  req.fields = {
      {"HOST", "h"},
      {"uPgRaDe", "WebSocket"},
      {"CONNECTION", "keep-alive, UPGRADE"},
      {"sec-websocket-key", std::string(kRfcKey)},
      {"SEC-WEBSOCKET-VERSION", "13"},
      {"sec-WebSocket-PROTOCOL", "MQTT"},
  };
  const UpgradeResult r = feed_all(req.text());
  const auto* done = std::get_if<UpgradeDone>(&r);
  ASSERT_NE(done, nullptr) << refused(r).reason;
  // Echoed as the client spelled it.
  EXPECT_EQ(done->subprotocol, "MQTT");
  EXPECT_EQ(done->response, expected_response(kRfcAccept, "MQTT"));
}

TEST(UpgradeParser, ValuesAroundOptionalWhitespace) {
  Request req;
  req.fields = {
      {"Host", "h"},
      {"Upgrade", "\t websocket \t"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Key", "  " + std::string(kRfcKey) + "\t"},
      {"Sec-WebSocket-Version", " 13 "},
  };
  const UpgradeResult r = feed_all(req.text());
  const auto* done = std::get_if<UpgradeDone>(&r);
  ASSERT_NE(done, nullptr) << refused(r).reason;
  EXPECT_EQ(done->response, expected_response(kRfcAccept, ""));
}

// A key is used as sent: the padding bits of its last character need not be zero (a decoder
// ignores them, so it still decodes to 16 bytes), and the accept key hashes it unchanged.
TEST(UpgradeParser, KeyWithNonZeroPaddingBits) {
  const std::string key = "dGhlIHNhbXBsZSBub25jZR==";
  const UpgradeResult r = feed_all(Request{}.set("Sec-WebSocket-Key", key).text());
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r)) << refused(r).reason;
  EXPECT_EQ(std::get<UpgradeDone>(r).response,
            expected_response(websocket_accept_key(key), "mqtt"));
  EXPECT_NE(websocket_accept_key(key), kRfcAccept);
}

TEST(UpgradeParser, ListsSpreadOverSeveralFields) {
  Request req;
  req.set("Upgrade", "h2c").add("Upgrade", "websocket");
  req.set("Connection", "keep-alive").add("Connection", ",, Upgrade ,");
  EXPECT_EQ(status_of(feed_all(req.text())), 101);
}

// --- subprotocols -------------------------------------------------------------------------

TEST(UpgradeParser, SubprotocolMqtt) {
  const UpgradeResult r = feed_all(Request{}.set("Sec-WebSocket-Protocol", "mqtt").text());
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r));
  EXPECT_EQ(std::get<UpgradeDone>(r).subprotocol, "mqtt");
}

TEST(UpgradeParser, SubprotocolMqttV31) {
  const UpgradeResult r = feed_all(Request{}.set("Sec-WebSocket-Protocol", "mqttv3.1").text());
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r));
  EXPECT_EQ(std::get<UpgradeDone>(r).subprotocol, "mqttv3.1");
  EXPECT_EQ(std::get<UpgradeDone>(r).response, expected_response(kRfcAccept, "mqttv3.1"));
}

TEST(UpgradeParser, SubprotocolMqttPreferredOverMqttV31) {
  for (const char* offer : {"mqttv3.1, mqtt", "mqtt, mqttv3.1", "chat, mqttv3.1, mqtt"}) {
    const UpgradeResult r = feed_all(Request{}.set("Sec-WebSocket-Protocol", offer).text());
    ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r)) << offer;
    EXPECT_EQ(std::get<UpgradeDone>(r).subprotocol, "mqtt") << offer;
  }
  // Offers may be spread over several fields.
  const UpgradeResult r = feed_all(
      Request{}.set("Sec-WebSocket-Protocol", "chat").add("Sec-WebSocket-Protocol", "mqtt").text());
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r));
  EXPECT_EQ(std::get<UpgradeDone>(r).subprotocol, "mqtt");
}

TEST(UpgradeParser, NoSubprotocolOffered) {
  const UpgradeResult r = feed_all(Request{}.remove("Sec-WebSocket-Protocol").text());
  const auto* done = std::get_if<UpgradeDone>(&r);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->subprotocol, "");
  EXPECT_EQ(done->response.find("Sec-WebSocket-Protocol"), std::string::npos);
  EXPECT_EQ(done->response, expected_response(kRfcAccept, ""));
}

TEST(UpgradeParser, OnlyNonMqttSubprotocolsOfferedIsRefused) {
  for (const char* offer : {"chat", "chat, superchat", "mqttv5", "mqtt3.1", "mqt"}) {
    const UpgradeResult r = feed_all(Request{}.set("Sec-WebSocket-Protocol", offer).text());
    EXPECT_EQ(status_of(r), 400) << offer;
  }
}

// An empty field or a list of empty elements offers nothing.
TEST(UpgradeParser, EmptySubprotocolListOffersNothing) {
  for (const char* offer : {"", " , ,"}) {
    const UpgradeResult r = feed_all(Request{}.set("Sec-WebSocket-Protocol", offer).text());
    ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r)) << "'" << offer << "'";
    EXPECT_EQ(std::get<UpgradeDone>(r).subprotocol, "");
  }
}

// --- refusals -----------------------------------------------------------------------------

struct RefusalCase {
  const char* name;
  int status;
  std::string head;
};

std::vector<RefusalCase> refusal_cases() {
  const std::string k(kRfcKey);
  auto line = [](std::string l) {
    Request r;
    r.request_line = std::move(l);
    return r.text();
  };
  return {
      // 400: the request line.
      {"no version", 400, line("GET /mqtt")},
      {"no target", 400, line("GET")},
      {"double space", 400, line("GET  /mqtt HTTP/1.1")},
      {"trailing space", 400, line("GET /mqtt HTTP/1.1 ")},
      {"bad version syntax", 400, line("GET /mqtt HTTP/1")},
      {"lowercase http", 400, line("GET /mqtt http/1.1")},
      {"method not a token", 400, line("G(T /mqtt HTTP/1.1")},
      {"control in target", 400, line("GET /mq\x01tt HTTP/1.1")},
      {"absolute-form target", 400, line("GET http://broker.example/mqtt HTTP/1.1")},
      {"asterisk target", 400, line("GET * HTTP/1.1")},
      // 400: header field syntax.
      {"folded field", 400, Request{}.add(" folded", "x").text()},
      {"no colon", 400, "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade websocket\r\n\r\n"},
      {"space before colon", 400, "GET /mqtt HTTP/1.1\r\nHost : h\r\n\r\n"},
      {"empty name", 400, "GET /mqtt HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n"},
      {"control in value", 400, Request{}.add("X-Note", "a\x7f b").text()},
      {"bare CR in value", 400, Request{}.add("X-Note", "a\rb").text()},
      // 400: the handshake fields.
      {"no Host", 400, Request{}.remove("Host").text()},
      {"two Hosts", 400, Request{}.add("Host", "other").text()},
      {"no key", 400, Request{}.remove("Sec-WebSocket-Key").text()},
      {"two keys", 400, Request{}.add("Sec-WebSocket-Key", k).text()},
      {"short key", 400, Request{}.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZQ==").text()},
      {"key not padded", 400,
       Request{}.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQAA").text()},
      {"key bad char", 400, Request{}.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZ-==").text()},
      {"key too long", 400, Request{}.set("Sec-WebSocket-Key", k + "AAAA").text()},
      {"only chat offered", 400, Request{}.set("Sec-WebSocket-Protocol", "chat").text()},
      // 404
      {"other path", 404, line("GET /ws HTTP/1.1")},
      {"longer path", 404, line("GET /mqtt/x HTTP/1.1")},
      {"path case", 404, line("GET /MQTT HTTP/1.1")},
      {"root", 404, line("GET / HTTP/1.1")},
      // 405
      {"POST", 405, line("POST /mqtt HTTP/1.1")},
      {"lowercase get", 405, line("get /mqtt HTTP/1.1")},
      // 426
      {"no Upgrade", 426, Request{}.remove("Upgrade").text()},
      {"Upgrade h2c", 426, Request{}.set("Upgrade", "h2c").text()},
      {"Upgrade websocket2", 426, Request{}.set("Upgrade", "websocket2").text()},
      {"no Connection", 426, Request{}.remove("Connection").text()},
      {"Connection keep-alive", 426, Request{}.set("Connection", "keep-alive").text()},
      {"no Sec-WebSocket-Version", 426, Request{}.remove("Sec-WebSocket-Version").text()},
      {"version 8", 426, Request{}.set("Sec-WebSocket-Version", "8").text()},
      {"two versions", 426, Request{}.add("Sec-WebSocket-Version", "13").text()},
      // 505
      {"HTTP/1.0", 505, line("GET /mqtt HTTP/1.0")},
      {"HTTP/2.0", 505, line("GET /mqtt HTTP/2.0")},
      {"HTTP/0.9", 505, line("GET /mqtt HTTP/0.9")},
  };
}

// "Content-Length: N\r\n\r\n" then exactly N bytes.
void expect_whole_response(const UpgradeRefused& r, const std::string& where) {
  const std::string prefix = "HTTP/1.1 " + std::to_string(r.status) + " ";
  EXPECT_EQ(r.response.substr(0, prefix.size()), prefix) << where;
  EXPECT_NE(r.response.find("\r\nConnection: "), std::string::npos) << where;
  EXPECT_NE(r.response.find("close\r\n"), std::string::npos) << where;
  const size_t cl = r.response.find("Content-Length: ");
  const size_t body = r.response.find("\r\n\r\n");
  ASSERT_NE(cl, std::string::npos) << where;
  ASSERT_NE(body, std::string::npos) << where;
  const size_t length = std::stoul(r.response.substr(cl + 16));
  EXPECT_EQ(r.response.size() - body - 4, length) << where;
  EXPECT_EQ(r.response.substr(body + 4), std::string(r.reason) + "\n") << where;
}

TEST(UpgradeParser, EachRefusalStatus) {
  for (const RefusalCase& c : refusal_cases()) {
    const UpgradeResult r = feed_all(c.head);
    ASSERT_TRUE(std::holds_alternative<UpgradeRefused>(r)) << c.name << ": got " << status_of(r);
    const UpgradeRefused& x = std::get<UpgradeRefused>(r);
    EXPECT_EQ(x.status, c.status) << c.name << ": " << x.reason;
    EXPECT_FALSE(x.reason.empty()) << c.name;
    expect_whole_response(x, c.name);
  }
}

TEST(UpgradeParser, RefusalsAreTheSameAtEverySplitPoint) {
  for (const RefusalCase& c : refusal_cases()) {
    const Outcome whole = feed_pieces(c.head, {});
    for (size_t cut = 0; cut <= c.head.size(); ++cut) {
      expect_same(whole.result, feed_pieces(c.head, {cut}).result,
                  std::string(c.name) + " cut at " + std::to_string(cut));
    }
  }
}

TEST(UpgradeParser, RefusalResponsesNameWhatIsAllowed) {
  Request post;
  post.request_line = "POST /mqtt HTTP/1.1";
  EXPECT_NE(refused(feed_all(post.text())).response.find("\r\nAllow: GET\r\n"), std::string::npos);

  // RFC 6455 §4.4: another version gets the one the server speaks.
  const UpgradeResult r8 = feed_all(Request{}.set("Sec-WebSocket-Version", "8").text());
  const UpgradeRefused& v8 = refused(r8);
  EXPECT_EQ(v8.status, 426);
  EXPECT_NE(v8.response.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
  EXPECT_NE(v8.response.find("\r\nUpgrade: websocket\r\n"), std::string::npos);

  const UpgradeResult no_upgrade = feed_all(Request{}.remove("Upgrade").text());
  const UpgradeRefused& plain = refused(no_upgrade);
  EXPECT_EQ(plain.status, 426);
  EXPECT_NE(plain.response.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_EQ(plain.response.find("Sec-WebSocket-Version"), std::string::npos);
}

TEST(UpgradeParser, ConfiguredPath) {
  Request req;
  req.request_line = "GET /ws/mqtt?x HTTP/1.1";
  EXPECT_EQ(status_of(feed_all(req.text(), "/ws/mqtt")), 101);
  EXPECT_EQ(status_of(feed_all(req.text(), "/mqtt")), 404);
}

// The checks run in the documented order: the request line before the fields, Host before
// the path, the path before the upgrade fields.
TEST(UpgradeParser, ChecksInOrder) {
  Request req;
  req.request_line = "POST /other HTTP/1.0";
  req.remove("Host").remove("Upgrade");
  EXPECT_EQ(status_of(feed_all(req.text())), 405);
  req.request_line = "GET /other HTTP/1.0";
  EXPECT_EQ(status_of(feed_all(req.text())), 505);
  req.request_line = "GET /other HTTP/1.1";
  EXPECT_EQ(status_of(feed_all(req.text())), 400);
  req.add("Host", "h");
  EXPECT_EQ(status_of(feed_all(req.text())), 404);
  req.request_line = "GET /mqtt HTTP/1.1";
  EXPECT_EQ(status_of(feed_all(req.text())), 426);
}

// --- the head size limit ------------------------------------------------------------------

// A valid request head of exactly `size` bytes (an X-Pad field fills it).
std::string head_of_size(size_t size) {
  Request req;
  req.add("X-Pad", "");
  const size_t base = req.text().size();
  EXPECT_GE(size, base);
  req.set("X-Pad", std::string(size - base, 'p'));
  const std::string head = req.text();
  EXPECT_EQ(head.size(), size);
  return head;
}

TEST(UpgradeParser, HeadOfExactlyTheLimitIsAccepted) {
  constexpr size_t kMax = 512;
  const std::string head = head_of_size(kMax);
  const UpgradeResult r = feed_all(head + "frames", "/mqtt", kMax);
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(r)) << refused(r).reason;
  EXPECT_EQ(std::get<UpgradeDone>(r).consumed, kMax);

  // Byte by byte too: the parser holds kMax bytes before the last one completes the head.
  UpgradeParser p("/mqtt", kMax);
  for (size_t i = 0; i + 1 < head.size(); ++i) {
    ASSERT_TRUE(std::holds_alternative<UpgradeIncomplete>(p.feed(head.substr(i, 1))));
  }
  EXPECT_EQ(p.buffered(), kMax - 1);
  EXPECT_EQ(status_of(p.feed(head.substr(kMax - 1) + "x")), 101);
}

TEST(UpgradeParser, HeadOneOverTheLimitIsRefusedWith431) {
  constexpr size_t kMax = 512;
  const std::string head = head_of_size(kMax + 1);
  const UpgradeResult r = feed_all(head, "/mqtt", kMax);
  EXPECT_EQ(status_of(r), 431);
  expect_whole_response(refused(r), "431");

  // Refused when byte kMax + 1 arrives, not before.
  UpgradeParser p("/mqtt", kMax);
  EXPECT_TRUE(std::holds_alternative<UpgradeIncomplete>(p.feed(head.substr(0, kMax))));
  EXPECT_EQ(p.buffered(), kMax);
  EXPECT_EQ(status_of(p.feed(head.substr(kMax, 1))), 431);
  EXPECT_EQ(p.buffered(), 0u);
  EXPECT_TRUE(p.finished());
}

// A head with no end (no empty line) is refused as soon as it passes the limit, whatever the
// line it is in.
TEST(UpgradeParser, EndlessHeadIsRefusedAtTheLimit) {
  constexpr size_t kMax = 100;
  for (const std::string& junk : {std::string(kMax + 1, 'a'), std::string(kMax + 1, '\n'),
                                  std::string("GET /mqtt HTTP/1.1\r\n") + std::string(kMax, 'h')}) {
    const Outcome whole = feed_pieces(junk, {}, kMax);
    EXPECT_EQ(status_of(whole.result), 431);
    for (size_t cut = 0; cut <= junk.size(); ++cut) {
      EXPECT_EQ(status_of(feed_pieces(junk, {cut}, kMax).result), 431) << cut;
    }
    UpgradeParser p("/mqtt", kMax);
    EXPECT_TRUE(std::holds_alternative<UpgradeIncomplete>(p.feed(junk.substr(0, kMax))));
    EXPECT_EQ(p.buffered(), kMax);
  }
}

// --- a finished parser --------------------------------------------------------------------

TEST(UpgradeParser, FinishedParserReturnsTheSameDone) {
  const std::string head = Request{}.text();
  UpgradeParser p("/mqtt");
  const UpgradeResult first = p.feed(head + "abc");
  ASSERT_TRUE(std::holds_alternative<UpgradeDone>(first));
  for (std::string_view more : {"", "abc", "GET / HTTP/1.0\r\n\r\n"}) {
    const UpgradeResult again = p.feed(more);
    expect_same(first, again, std::string(more));
    ASSERT_TRUE(std::holds_alternative<UpgradeDone>(again));
    EXPECT_EQ(std::get<UpgradeDone>(again).consumed, 0u);
    EXPECT_EQ(p.buffered(), 0u);
    EXPECT_TRUE(p.finished());
  }
}

TEST(UpgradeParser, FinishedParserReturnsTheSameRefusal) {
  Request req;
  req.request_line = "GET /elsewhere HTTP/1.1";
  UpgradeParser p("/mqtt");
  const UpgradeResult first = p.feed(req.text());
  ASSERT_EQ(status_of(first), 404);
  const UpgradeResult again = p.feed(Request{}.text());
  expect_same(first, again, "after refusal");
  EXPECT_EQ(p.buffered(), 0u);

  UpgradeParser big("/mqtt", 10);
  const UpgradeResult r431 = big.feed(std::string(11, 'x'));
  ASSERT_EQ(status_of(r431), 431);
  expect_same(r431, big.feed(Request{}.text()), "after 431");
}

TEST(UpgradeParser, NothingFedIsIncomplete) {
  UpgradeParser p("/mqtt");
  EXPECT_TRUE(std::holds_alternative<UpgradeIncomplete>(p.feed(std::string_view{})));
  EXPECT_TRUE(std::holds_alternative<UpgradeIncomplete>(p.feed("\r\n\r\n")));
  EXPECT_FALSE(p.finished());
  EXPECT_EQ(status_of(p.feed(Request{}.text())), 101);
}

}  // namespace
}  // namespace harbor::wire
