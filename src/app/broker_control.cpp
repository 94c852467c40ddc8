#include "app/broker_control.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/file_lock.hpp"

namespace harbor::app {

namespace {

using namespace std::chrono_literals;

constexpr auto kStopWait = 60s;    // a shutdown drains the store: give it time
constexpr auto kReloadWait = 20s;  // the broker re-reads and applies the file
constexpr std::string_view kEnvPrefix = "HARBORMQ_";

std::string resolve_pid_file(const StartArgs& a) {
  if (!a.pid_file.empty()) return a.pid_file;
  auto cfg = load_config(a);
  return pid_file_of(a, cfg ? cfg->get() : nullptr);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The running broker behind `pid_file`: the process holding its lock. When nobody holds it,
// says why nothing will be signalled and returns nullopt.
std::optional<pid_t> running_broker(const std::string& pid_file, bool quiet) {
  if (auto holder = FileLock::holder(pid_file); holder && *holder > 0) return holder;
  if (quiet) return std::nullopt;
  if (::access(pid_file.c_str(), F_OK) != 0) {
    std::fprintf(stderr, "harbormq: no running broker (pid file %s does not exist)\n",
                 pid_file.c_str());
    return std::nullopt;
  }
  std::string named = read_text(pid_file);
  while (!named.empty() && (named.back() == '\n' || named.back() == ' ')) named.pop_back();
  std::fprintf(stderr,
               "harbormq: no running broker: pid file %s names pid %s, but no broker holds "
               "its lock (stale pid file); nothing was signalled\n",
               pid_file.c_str(), named.empty() ? "(none)" : named.c_str());
  return std::nullopt;
}

bool released(const std::string& pid_file, pid_t pid) {
  auto holder = FileLock::holder(pid_file);
  return !holder || *holder != pid || ::kill(pid, 0) != 0;
}

std::vector<std::string> split_nul(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string readlink_text(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// How a running process was started, from /proc.
struct Invocation {
  std::string exe;
  std::string cwd;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // HARBORMQ_* entries only
};

std::optional<Invocation> invocation_of(pid_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  Invocation inv;
  inv.argv = split_nul(read_text(proc + "/cmdline"));
  inv.cwd = readlink_text(proc + "/cwd");
  inv.exe = readlink_text(proc + "/exe");
  for (auto& entry : split_nul(read_text(proc + "/environ"))) {
    if (entry.starts_with(kEnvPrefix)) inv.env.push_back(std::move(entry));
  }
  if (inv.argv.empty() || inv.cwd.empty()) return std::nullopt;
  // A binary replaced since (an upgrade) shows as "PATH (deleted)": run the one at PATH.
  constexpr std::string_view kDeleted = " (deleted)";
  if (inv.exe.ends_with(kDeleted)) inv.exe.resize(inv.exe.size() - kDeleted.size());
  if (inv.exe.empty() || ::access(inv.exe.c_str(), X_OK) != 0) inv.exe = readlink_text("/proc/self/exe");
  return inv;
}

std::string shell_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    bool plain = !w.empty() && w.find_first_of(" \t'\"\\$`*?[]{}()<>|&;#~") == std::string::npos;
    if (plain) {
      out += w;
      continue;
    }
    out += '\'';
    for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

int signal_and_wait(const std::string& path, pid_t pid) {
  if (::kill(pid, SIGTERM) != 0) {
    std::fprintf(stderr, "harbormq: cannot signal pid %d: %s\n", pid, std::strerror(errno));
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() + kStopWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (released(path, pid)) {
      std::printf("harbormq: stopped pid %d\n", pid);
      return 0;
    }
    std::this_thread::sleep_for(50ms);
  }
  std::fprintf(stderr, "harbormq: pid %d did not stop within %lld s\n", pid,
               static_cast<long long>(kStopWait.count()));
  return 1;
}

}  // namespace

int stop_broker(const StartArgs& a, bool quiet_if_missing) {
  std::string path = resolve_pid_file(a);
  auto pid = running_broker(path, quiet_if_missing);
  if (!pid) return quiet_if_missing ? 0 : 1;
  return signal_and_wait(path, *pid);
}

int reload_broker(const StartArgs& a) {
  std::string path = resolve_pid_file(a);
  auto pid = running_broker(path, false);
  if (!pid) return 1;
  std::random_device rd;
  int token = static_cast<int>(rd() & 0x3fffffff) + 1;
  sigval value{};
  value.sival_int = token;
  if (::sigqueue(*pid, SIGHUP, value) != 0) {
    std::fprintf(stderr, "harbormq: cannot signal pid %d: %s\n", *pid, std::strerror(errno));
    return 1;
  }
  const std::string status_path = reload_status_path(path);
  const std::string expected = "token " + std::to_string(token) + "\n";
  auto deadline = std::chrono::steady_clock::now() + kReloadWait;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string status = read_text(status_path);
    if (status.starts_with(expected)) {
      std::istringstream lines(status.substr(expected.size()));
      std::string verdict;
      std::getline(lines, verdict);
      std::string rest((std::istreambuf_iterator<char>(lines)), std::istreambuf_iterator<char>());
      while (!rest.empty() && rest.back() == '\n') rest.pop_back();
      if (verdict == "ok") {
        std::printf("harbormq: pid %d reloaded its configuration\n%s\n", *pid, rest.c_str());
        return 0;
      }
      std::fprintf(stderr, "harbormq: pid %d refused the configuration:\n%s\n", *pid, rest.c_str());
      return 1;
    }
    if (::kill(*pid, 0) != 0) break;
    std::this_thread::sleep_for(20ms);
  }
  std::fprintf(stderr, "harbormq: pid %d did not answer the reload within %lld s (see its log)\n",
               *pid, static_cast<long long>(kReloadWait.count()));
  return 1;
}

int restart_broker(const StartArgs& a) {
  std::string path = resolve_pid_file(a);
  auto pid = running_broker(path, true);
  if (!pid) return run_broker(a);
  auto inv = invocation_of(*pid);
  if (!inv) {
    std::fprintf(stderr, "harbormq: cannot read how pid %d was started (/proc/%d); not stopping it\n",
                 *pid, *pid);
    return 1;
  }
  if (int rc = signal_and_wait(path, *pid); rc != 0) return rc;
  std::printf("harbormq: starting again in %s: %s\n", inv->cwd.c_str(), shell_words(inv->argv).c_str());
  std::fflush(stdout);
  if (::chdir(inv->cwd.c_str()) != 0) {
    std::fprintf(stderr, "harbormq: cannot enter %s: %s\n", inv->cwd.c_str(), std::strerror(errno));
    return 1;
  }
  // The broker's own overrides from the environment, and none of ours.
  std::vector<std::string> ours;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with(kEnvPrefix)) ours.emplace_back(entry.substr(0, entry.find('=')));
  }
  for (const auto& name : ours) ::unsetenv(name.c_str());
  for (const auto& entry : inv->env) {
    size_t eq = entry.find('=');
    ::setenv(entry.substr(0, eq).c_str(), eq == std::string::npos ? "" : entry.substr(eq + 1).c_str(), 1);
  }
  std::vector<char*> argv;
  for (auto& arg : inv->argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  ::execv(inv->exe.c_str(), argv.data());
  std::fprintf(stderr, "harbormq: cannot run %s: %s\n", inv->exe.c_str(), std::strerror(errno));
  return 1;
}

}  // namespace harbor::app
