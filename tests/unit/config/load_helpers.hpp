// Loading test text for the config tests: load_ok expects success (and fails the test with the
// error otherwise), load_error returns the error's text. Errors name the file "t.conf".
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"

namespace harbor::config::test_support {

inline Config load_ok(const std::string& text) {
  auto r = load_string(text, "t.conf");
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  if (!r) return Config{};
  return *r->config;
}

inline std::string load_error(const std::string& text) {
  auto r = load_string(text, "t.conf");
  if (r) return "(no error)";
  return r.error().to_string();
}

}  // namespace harbor::config::test_support
