// The catch boundary of one connection (STYLE 6): exceptions are for bugs, and a bug met
// while handling one connection's input, output or hand-over must close that connection
// only, never end the shard thread (which would end the process and every other client).
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace harbor::runtime {

// Runs `f()`. An exception escaping it is swallowed and described in the return value, for
// the caller to log and to close the connection it was handling; nullopt when `f` returned.
template <class F>
std::optional<std::string> run_contained(F&& f) noexcept {
  try {
    std::forward<F>(f)();
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what()[0] != '\0' ? e.what() : "exception without a message");
  } catch (...) {
    return std::string("unknown exception");
  }
}

}  // namespace harbor::runtime
