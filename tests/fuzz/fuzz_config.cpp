// Arbitrary text through the whole configuration path: HOCON parsing, substitutions,
// schema validation. Any result is fine; crashes, hangs, leaks and UB are not.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto result = harbor::config::load_string(text, "<fuzz>");
  if (result) {
    // Touch the result so the whole mapping runs, including the copy of defaults.
    volatile size_t sink = result->warnings.size() + result->config->unimplemented_sections.size();
    (void)sink;
  } else {
    volatile size_t sink = result.error().to_string().size();
    (void)sink;
  }
  return 0;
}
