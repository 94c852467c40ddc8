#include "tools/output_format.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <nlohmann/json.hpp>

namespace harbor::tools {

namespace {

constexpr std::string_view kConversions = "%ACDEFIjJlmPpqRrStUxX";

tl::unexpected<std::string> fail(std::string text) { return tl::unexpected(std::move(text)); }

void pad(std::string& out, char c, int n) {
  if (n > 0) out.append(static_cast<size_t>(n), c);
}

// printf("%d") with mosquitto's flag handling: '-' left-aligns with blanks, '0' pads with
// zeros, otherwise right-aligned with blanks.
void put_int(std::string& out, uint64_t value, const FormatToken& f) {
  std::string digits = std::to_string(value);
  int fill = f.width - static_cast<int>(digits.size());
  if (f.left_align) {
    out += digits;
    pad(out, ' ', fill);
  } else {
    pad(out, f.zero_pad ? '0' : ' ', fill);
    out += digits;
  }
}

// An absent integer property prints `width` pad characters (zeros with the '0' flag).
void put_blank_int(std::string& out, const FormatToken& f) { pad(out, f.zero_pad ? '0' : ' ', f.width); }

// printf("%*.*s"): the precision cuts, the width pads with blanks (never zeros).
void put_str(std::string& out, std::string_view s, const FormatToken& f) {
  if (f.precision >= 0 && s.size() > static_cast<size_t>(f.precision)) s = s.substr(0, static_cast<size_t>(f.precision));
  int fill = f.width - static_cast<int>(s.size());
  if (!f.left_align) pad(out, ' ', fill);
  out += s;
  if (f.left_align) pad(out, ' ', fill);
}

// %p: a width is also the maximum (mosquitto cuts the payload to it); pads with the pad
// character on the left, blanks on the right.
void put_payload(std::string& out, std::string_view payload, const FormatToken& f) {
  if (f.width > 0 && payload.size() > static_cast<size_t>(f.width)) payload = payload.substr(0, static_cast<size_t>(f.width));
  int fill = f.width - static_cast<int>(payload.size());
  if (!f.left_align) pad(out, f.zero_pad ? '0' : ' ', fill);
  out += payload;
  if (f.left_align) pad(out, ' ', fill);
}

// %x / %X: two digits per byte; a width is the maximum number of digits (whole bytes).
// mosquitto 2.0.11 prints only half the bytes when a width is given; we print what fits.
void put_hex(std::string& out, std::string_view payload, const FormatToken& f, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  size_t bytes = payload.size();
  if (f.width > 0) bytes = std::min(bytes, static_cast<size_t>(f.width) / 2);
  int fill = f.width - static_cast<int>(bytes * 2);
  if (!f.left_align) pad(out, f.zero_pad ? '0' : ' ', fill);
  for (size_t i = 0; i < bytes; ++i) {
    auto c = static_cast<unsigned char>(payload[i]);
    out += digits[c >> 4];
    out += digits[c & 0x0F];
  }
  if (f.left_align) pad(out, ' ', fill);
}

std::string strftime_text(const char* fmt, const std::tm& t) {
  char buf[128];
  size_t n = std::strftime(buf, sizeof buf, fmt, &t);
  return std::string(buf, n);
}

// A JSON string the way cJSON prints it: quotes, backslash and the short control escapes,
// other bytes below 0x20 as \u00xx, everything else (UTF-8 included) as is. cJSON builds
// its strings from C strings, so the text ends at the first NUL byte.
void put_json_string(std::string& out, std::string_view s) {
  if (auto nul = s.find('\0'); nul != std::string_view::npos) s = s.substr(0, nul);
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// cJSON keeps every number as a double and prints an integral value that fits an int with
// %d, anything else with the shortest of %1.15g / %1.17g that reads back equal.
void put_json_number(std::string& out, double d) {
  if (std::isnan(d) || std::isinf(d)) {
    out += "null";
    return;
  }
  double as_int = d >= static_cast<double>(std::numeric_limits<int>::max())   ? std::numeric_limits<int>::max()
                  : d <= static_cast<double>(std::numeric_limits<int>::min()) ? std::numeric_limits<int>::min()
                                                                              : static_cast<int>(d);
  char buf[32];
  if (d == as_int) {
    std::snprintf(buf, sizeof buf, "%d", static_cast<int>(as_int));
  } else {
    std::snprintf(buf, sizeof buf, "%1.15g", d);
    if (std::strtod(buf, nullptr) != d) std::snprintf(buf, sizeof buf, "%1.17g", d);
  }
  out += buf;
}

void put_json_value(std::string& out, const nlohmann::ordered_json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: out += "null"; break;
    case nlohmann::json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: put_json_number(out, v.get<double>()); break;
    case nlohmann::json::value_t::string: put_json_string(out, v.get_ref<const std::string&>()); break;
    case nlohmann::json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ',';
        first = false;
        put_json_value(out, item);
      }
      out += ']';
      break;
    }
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += ',';
        first = false;
        put_json_string(out, key);
        out += ':';
        put_json_value(out, item);
      }
      out += '}';
      break;
    }
    default: out += "null"; break;
  }
}

// The "properties" object, in the order a HarborMQ broker sends them (mosquitto_sub prints
// them in wire order; our decoder keeps no order): the subscription identifiers the broker
// adds per subscriber first, then the message's own in encoder order. Absent when none.
void put_json_properties(std::string& out, const mqtt::Properties& p) {
  std::string body;
  auto key = [&body](std::string_view k) {
    if (!body.empty()) body += ',';
    put_json_string(body, k);
    body += ':';
  };
  for (uint32_t id : p.subscription_identifiers) key("subscription-identifier"), body += std::to_string(id);
  if (p.payload_format_indicator) key("payload-format-indicator"), body += std::to_string(*p.payload_format_indicator);
  if (p.message_expiry_interval) key("message-expiry-interval"), body += std::to_string(*p.message_expiry_interval);
  if (p.content_type) key("content-type"), put_json_string(body, *p.content_type);
  if (p.response_topic) key("response-topic"), put_json_string(body, *p.response_topic);
  if (p.correlation_data) key("correlation-data"), put_json_string(body, *p.correlation_data);
  if (p.topic_alias) key("topic-alias"), body += std::to_string(*p.topic_alias);
  if (!p.user_properties.empty()) {
    key("user-properties");
    body += '{';
    bool first = true;
    for (const auto& [k, v] : p.user_properties) {
      if (!first) body += ',';
      first = false;
      put_json_string(body, k);
      body += ':';
      put_json_string(body, v);
    }
    body += '}';
  }
  if (body.empty()) return;
  out += ",\"properties\":{";
  out += body;
  out += '}';
}

}  // namespace

ReceiveTime receive_time_now() {
  ReceiveTime t;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  t.unix_s = ts.tv_sec;
  t.ns = ts.tv_nsec;
  time_t s = ts.tv_sec;
  localtime_r(&s, &t.local);
  return t;
}

tl::expected<OutputFormat, std::string> parse_output_format(std::string_view text) {
  OutputFormat f;
  auto literal = [&f](char c) {
    if (f.tokens.empty() || f.tokens.back().kind != FormatToken::Kind::Literal) f.tokens.emplace_back();
    f.tokens.back().literal += c;
  };
  const std::string incomplete = "Incomplete format specifier.";
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      FormatToken t;
      t.kind = FormatToken::Kind::Field;
      size_t j = i + 1;
      if (j < text.size() && text[j] == '-') t.left_align = true, ++j;
      if (j < text.size() && text[j] == '0') t.zero_pad = true, ++j;
      while (j < text.size() && text[j] >= '0' && text[j] <= '9') {
        t.width = std::min(t.width * 10 + (text[j] - '0'), 1 << 16);
        ++j;
      }
      if (j < text.size() && text[j] == '.') {
        ++j;
        t.precision = 0;
        while (j < text.size() && text[j] >= '0' && text[j] <= '9') {
          t.precision = std::min(t.precision * 10 + (text[j] - '0'), 1 << 16);
          ++j;
        }
      }
      if (j >= text.size()) return fail(incomplete);
      if (kConversions.find(text[j]) == std::string_view::npos)
        return fail(std::string("Invalid format specifier '") + text[j] + "'.");
      t.conversion = text[j];
      i = j;
      if (t.conversion == '%') {
        literal('%');
      } else {
        f.tokens.push_back(std::move(t));
      }
    } else if (c == '@') {
      if (i + 1 >= text.size()) return fail(incomplete);
      char next = text[++i];
      if (next == '@') {
        literal('@');
      } else {
        FormatToken t;
        t.kind = FormatToken::Kind::Time;
        t.conversion = next;
        f.tokens.push_back(std::move(t));
      }
    } else if (c == '\\') {
      if (i + 1 >= text.size()) return fail(std::string("Incomplete escape specifier."));
      char next = text[++i];
      switch (next) {
        case '\\': literal('\\'); break;
        case '0': literal('\0'); break;
        case 'a': literal('\a'); break;
        case 'e': literal('\033'); break;
        case 'n': literal('\n'); break;
        case 'r': literal('\r'); break;
        case 't': literal('\t'); break;
        case 'v': literal('\v'); break;
        default: return fail(std::string("Invalid escape specifier '") + next + "'.");
      }
    } else {
      literal(c);
    }
  }
  return f;
}

bool render_json(const mqtt::Publish& p, const ReceiveTime& t, bool payload_is_json, std::string& out) {
  std::string payload_text;
  if (p.payload.empty()) {
    payload_text = "null";
  } else if (payload_is_json) {
    auto parsed = nlohmann::ordered_json::parse(p.payload, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return false;
    put_json_value(payload_text, parsed);
  } else {
    put_json_string(payload_text, p.payload);
  }
  char us[32];
  std::snprintf(us, sizeof us, ".%06ldZ", t.ns / 1000);
  out += "{\"tst\":\"";
  out += strftime_text("%Y-%m-%dT%H:%M:%S", t.local);
  out += us;
  out += strftime_text("%z", t.local);
  out += "\",\"topic\":";
  put_json_string(out, p.topic);
  out += ",\"qos\":" + std::to_string(int(p.qos));
  out += ",\"retain\":" + std::to_string(p.retain ? 1 : 0);
  out += ",\"payloadlen\":" + std::to_string(p.payload.size());
  if (p.qos > 0) out += ",\"mid\":" + std::to_string(p.packet_id);
  put_json_properties(out, p.props);
  out += ",\"payload\":";
  out += payload_text;
  out += '}';
  return true;
}

void render_output_format(const OutputFormat& format, const mqtt::Publish& p, const ReceiveTime& t,
                          std::string& out, std::string& errors) {
  const mqtt::Properties& props = p.props;
  for (const FormatToken& f : format.tokens) {
    if (f.kind == FormatToken::Kind::Literal) {
      out += f.literal;
      continue;
    }
    if (f.kind == FormatToken::Kind::Time) {
      if (f.conversion == 'N') {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%09ld", t.ns);
        out += buf;
      } else {
        const char spec[3] = {'%', f.conversion, '\0'};
        out += strftime_text(spec, t.local);
      }
      continue;
    }
    switch (f.conversion) {
      case 'A':
        if (props.topic_alias) put_int(out, *props.topic_alias, f); else put_blank_int(out, f);
        break;
      case 'C':
        if (props.content_type) put_str(out, *props.content_type, f); else pad(out, ' ', f.width);
        break;
      case 'D':
        if (props.correlation_data) out += *props.correlation_data;
        break;
      case 'E':
        if (props.message_expiry_interval) put_int(out, *props.message_expiry_interval, f); else put_blank_int(out, f);
        break;
      case 'F':
        if (props.payload_format_indicator) put_int(out, *props.payload_format_indicator, f); else put_blank_int(out, f);
        break;
      case 'I':
        put_str(out, strftime_text("%Y-%m-%dT%H:%M:%S%z", t.local), f);
        break;
      case 'j':
        render_json(p, t, false, out);
        break;
      case 'J':
        if (!render_json(p, t, true, out))
          errors += "Error: Message payload is not valid JSON on topic " + p.topic + ".\n";
        break;
      case 'l':
        put_int(out, p.payload.size(), f);
        break;
      case 'm':
        put_int(out, p.packet_id, f);
        break;
      case 'P': {
        bool first = true;
        for (const auto& [k, v] : props.user_properties) {
          if (!first) out += ' ';
          first = false;
          out += k;
          out += ':';
          out += v;
        }
        break;
      }
      case 'p':
        put_payload(out, p.payload, f);
        break;
      case 'q':
        out += static_cast<char>('0' + p.qos);
        break;
      case 'R':
        if (props.response_topic) put_str(out, *props.response_topic, f);
        break;
      case 'r':
        out += p.retain ? '1' : '0';
        break;
      case 'S':
        if (!props.subscription_identifiers.empty()) put_int(out, props.subscription_identifiers.front(), f);
        else put_blank_int(out, f);
        break;
      case 't':
        put_str(out, p.topic, f);
        break;
      case 'U': {
        char buf[48];
        std::snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(t.unix_s), t.ns);
        out += buf;
        break;
      }
      case 'x':
        put_hex(out, p.payload, f, false);
        break;
      case 'X':
        put_hex(out, p.payload, f, true);
        break;
      default:
        break;
    }
  }
}

}  // namespace harbor::tools
