// `harbormq sub -F FORMAT`: mosquitto_sub 2.0.11's output format string.
//   %% %A %C %D %E %F %I %j %J %l %m %P %p %q %R %r %S %t %U %x %X  with the optional
//   flags '-' and '0', a field width and a precision where mosquitto takes them;
//   @X is strftime's %X, @N nanoseconds, @@ '@'; \\ \0 \a \e \n \r \t \v escapes.
// A format is parsed once (check and tokenise) and rendered per message. Rendering is a
// pure function of the message and the receive time passed in; any thread.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "mqtt/packets.hpp"

namespace harbor::tools {

// The wall-clock time a message was received, broken down in the local time zone.
struct ReceiveTime {
  std::tm local{};
  int64_t unix_s = 0;
  long ns = 0;  // nanoseconds within the second
};
ReceiveTime receive_time_now();

struct FormatToken {
  enum class Kind : uint8_t { Literal, Field, Time };
  Kind kind = Kind::Literal;
  std::string literal;    // Literal text (escapes resolved)
  char conversion = 0;    // Field: the letter after '%'; Time: the letter after '@'
  bool left_align = false;  // '-' flag
  bool zero_pad = false;    // '0' flag
  int width = 0;
  int precision = -1;       // -1: none
};

struct OutputFormat {
  std::vector<FormatToken> tokens;
};

// Checks `text` as mosquitto does ("Invalid format specifier 'z'.", "Incomplete format
// specifier.", "Invalid escape specifier 'q'.") and tokenises it.
tl::expected<OutputFormat, std::string> parse_output_format(std::string_view text);

// Appends the rendering of `p` to `out`. Problems that mosquitto reports per message (a %J
// payload that is not JSON) are appended to `errors`, one line each, and that field prints
// nothing.
void render_output_format(const OutputFormat& format, const mqtt::Publish& p, const ReceiveTime& t,
                          std::string& out, std::string& errors);

// The %j / %J object: {"tst":...,"topic":...,"qos":...,"retain":...,"payloadlen":...,
// ["mid":...,] ["properties":{...},] "payload":...}. With `payload_is_json` the payload is
// parsed and re-serialised compactly (cJSON's number style, as mosquitto_sub prints it);
// returns false when it is not valid JSON.
bool render_json(const mqtt::Publish& p, const ReceiveTime& t, bool payload_is_json, std::string& out);

}  // namespace harbor::tools
