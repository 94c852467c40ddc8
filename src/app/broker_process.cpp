#include "app/broker_process.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "app/file_lock.hpp"
#include "app/log_setup.hpp"
#include "app/server.hpp"
#include "app/service_notify.hpp"
#include "runtime/log.hpp"

namespace harbor::app {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kVersion = HARBOR_VERSION;

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

std::string format_uptime(Clock::duration d) {
  long s = static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  char buf[64];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh %02ldm %02lds", s / 3600, s / 60 % 60, s % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm %02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

// Protections the file asks for and we cannot give: refuse, naming each.
std::optional<std::string> refused_protections(const config::Config& cfg) {
  if (cfg.unenforced_protections.empty()) return std::nullopt;
  std::string out;
  for (const auto& e : cfg.unenforced_protections) {
    if (!out.empty()) out += "\n";
    out += e.to_string();
  }
  return out;
}

// Every client socket is a file descriptor: run with the soft RLIMIT_NOFILE at the hard
// limit, and say in one line what both are. Returns the soft limit in force (0: unknown).
rlim_t raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    runtime::log_warn(std::string("file descriptors: cannot read RLIMIT_NOFILE: ") +
                      std::strerror(errno));
    return 0;
  }
  const rlim_t before = lim.rlim_cur;
  rlim_t target = lim.rlim_max;
  if (target == RLIM_INFINITY) {
    // The kernel refuses a soft limit above fs.nr_open.
    target = 1048576;
    std::ifstream nr_open("/proc/sys/fs/nr_open");
    unsigned long long v = 0;
    if (nr_open >> v && v > 0) target = static_cast<rlim_t>(v);
  }
  std::string outcome = "already at the hard limit";
  if (before < target) {
    rlimit raised = lim;
    raised.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      lim.rlim_cur = target;
      outcome = "raised from " + std::to_string(before);
    } else {
      outcome = std::string("cannot raise it: ") + std::strerror(errno);
    }
  }
  auto show = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
  };
  runtime::log_info("file descriptors: RLIMIT_NOFILE soft limit " + show(lim.rlim_cur) + " (" +
                    outcome + "), hard limit " + show(lim.rlim_max));
  return lim.rlim_cur;
}

// The largest descriptor table reserved at start: 8 bytes of kernel memory per slot, so
// 512 KiB; a broker with more sockets grows it past this as before.
constexpr rlim_t kReservedFdSlots = 65536;

// Grows the kernel's descriptor table once, before the shard threads exist, to what the
// limit allows (at most kReservedFdSlots). Linux grows the table by doubling as descriptors
// are opened, and in a process with several threads every growth waits for an RCU grace
// period (synchronize_rcu in expand_fdtable): measured here, 10-30 ms with the accepting
// shard stopped, at 256, 512, ... 8192 sockets, the whole p99 of conn-10k-raw. A table
// never shrinks, so one dup2 to the highest slot and a close is enough.
void reserve_fd_table(rlim_t soft_limit) {
  const rlim_t slots = std::min(soft_limit, kReservedFdSlots);
  if (slots < 2) return;
  const int high = static_cast<int>(slots - 1);
  const int any = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int fd = any >= 0 ? ::dup3(any, high, O_CLOEXEC) : -1;
  const int err = errno;
  if (any >= 0) ::close(any);
  if (fd < 0) {
    errno = err;
    runtime::log_warn("file descriptors: cannot reserve a table of " + std::to_string(slots) +
                      " slots (" + std::strerror(errno) +
                      "); it grows as sockets are opened, each growth pausing a shard");
    return;
  }
  ::close(fd);
}

// Writes the answer to a reload request atomically (temp file + rename).
void write_reload_status(const std::string& pid_file, int token, bool ok, const std::string& text) {
  std::string path = reload_status_path(pid_file);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "token " << token << "\n" << (ok ? "ok" : "error") << "\n" << text << "\n";
    if (!out) {
      runtime::log_warn("reload: cannot write " + tmp + "; `harbormq reload` gets no answer");
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    runtime::log_warn("reload: cannot write " + path + "; `harbormq reload` gets no answer");
  }
}

// Re-reads the file and applies every reloadable key; keys that need a restart keep their
// running value and are named. Nothing is applied when the file is invalid.
struct ReloadOutcome {
  bool ok = false;
  std::string text;
};

ReloadOutcome reload(const StartArgs& a, Server& server,
                     std::shared_ptr<const config::Config>& running) {
  auto fresh = load_config(a);
  if (!fresh)
    return {false, fresh.error() + "\nnothing applied; the broker keeps running as it was"};
  if (auto refused = refused_protections(**fresh)) {
    return {false, *refused + "\nnothing applied; the broker keeps running as it was"};
  }
  auto merged = config::merge_for_reload(*running, **fresh);
  auto applied = config::diff(*running, *merged);
  auto pending = config::diff(*merged, **fresh);
  if (auto reconfigured = server.reconfigure(merged); !reconfigured) {
    return {false, reconfigured.error() + "\nnothing applied; the broker keeps running as it was"};
  }
  reload_logging(*merged);
  running = merged;
  std::string text;
  for (const auto& c : applied) {
    text += "applied: " + c.key + " = " + c.after + " (was " + c.before + ")\n";
  }
  for (const auto& c : pending) {
    text += "needs a restart: " + c.key + " = " + c.after + " (running with " + c.before + ")\n";
  }
  if ((merged->ssl.enabled && server.tls_port() != 0) ||
      (merged->wss.enabled && server.secure_websocket_port() != 0)) {
    text += "listeners.ssl: certificate, key and CAs read again, for new connections\n";
  }
  for (const auto& key : server.named_tls_listeners()) {
    text += key + ": certificate, key and CAs read again, for new connections\n";
  }
  if (applied.empty() && pending.empty() && text.empty()) text = "no changes\n";
  if (!text.empty()) text.pop_back();
  return {true, text};
}

}  // namespace

tl::expected<std::shared_ptr<const config::Config>, std::string> load_config(
    const StartArgs& a, std::vector<std::string>* warnings) {
  config::LoadOptions opts;
  opts.path = a.conf;
  opts.overrides = a.sets;
  opts.read_environment = true;
  auto loaded = config::load(opts);
  if (!loaded) return tl::unexpected(loaded.error().to_string());
  for (const auto& w : loaded->warnings) {
    if (warnings)
      warnings->push_back(w);
    else
      runtime::log_warn("config: " + w);
  }
  return loaded->config;
}

std::string pid_file_of(const StartArgs& a, const config::Config* cfg) {
  if (!a.pid_file.empty()) return a.pid_file;
  if (cfg) return cfg->pid_file;
  return config::defaults()->pid_file;
}

std::string reload_status_path(const std::string& pid_file) { return pid_file + ".reload"; }

namespace {

// glibc raises its mmap and trim thresholds each time a large block is freed (up to 32 MB
// and 64 MB), after which a thread arena keeps that much free memory at its top, where
// malloc_trim does not reach: RSS after a drain then stayed 10-25 MB above the idle figure
// (run to run). Fixed thresholds stop that: blocks from 512 KiB on are mapped and given
// back on free, and a free top above 1 MiB is trimmed. The MALLOC_*_ variables still win.
void fix_malloc_thresholds() {
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 512 * 1024);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

}  // namespace

int run_broker(const StartArgs& a) {
  const auto started_at = Clock::now();
  fix_malloc_thresholds();
  // Signals are taken by this thread with sigwaitinfo. Blocked before anything else runs, so
  // every thread started later (the logger's, the shards', the store's) inherits the mask
  // and a SIGTERM or SIGHUP can never land on a thread that would die of it.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> warnings;
  auto cfg = load_config(a, &warnings);
  if (!cfg) {
    std::fprintf(stderr, "harbormq: bad configuration: %s\n", cfg.error().c_str());
    return 2;
  }
  if (auto refused = refused_protections(**cfg)) {
    std::fprintf(stderr,
                 "harbormq: refusing to start without the protection the configuration "
                 "asks for:\n%s\n",
                 refused->c_str());
    return 2;
  }
  if (auto logging = setup_logging(**cfg); !logging) {
    for (const auto& w : warnings) std::fprintf(stderr, "harbormq: config: %s\n", w.c_str());
    std::fprintf(stderr, "harbormq: cannot start: %s\n", logging.error().c_str());
    return 1;
  }
  for (const auto& w : warnings) runtime::log_warn("config: " + w);

  const std::string pid_file = pid_file_of(a, cfg->get());
  auto pid_lock = FileLock::acquire(pid_file);
  if (!pid_lock) {
    std::string why = pid_lock.error().holder != 0
                          ? "another broker (pid " + std::to_string(pid_lock.error().holder) +
                                ") runs with this pid file; stop it first, or give this broker "
                                "its own pid file (--pid-file or system.pid_file)"
                          : "cannot create the pid file: " + pid_lock.error().message;
    std::fprintf(stderr, "harbormq: cannot start: %s\n",
                 (*cfg)->key_error("system.pid_file", "\"" + pid_file + "\": " + why).c_str());
    return 1;
  }

  const std::string source =
      (*cfg)->source.empty() ? "built-in defaults" : absolute((*cfg)->source);
  runtime::log_info(std::string("HarborMQ ") + kVersion + " starting (pid " +
                    std::to_string(getpid()) + ", config " + source + ", pid file " +
                    absolute(pid_file) + ")");
  reserve_fd_table(raise_fd_limit());
  std::shared_ptr<const config::Config> running = *cfg;
  Server server(running);
  if (auto started = server.start(); !started) {
    std::fprintf(stderr, "harbormq: cannot start: %s\n", started.error().c_str());
    runtime::log_error("cannot start: " + started.error());
    pid_lock->remove();
    return 1;
  }
  auto ready_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_at);
  std::string status = "listening on " + server.describe_listeners() + ", " +
                       std::to_string(server.shard_count()) + " shard threads, store " +
                       (running->sqlite.enabled ? server.describe_store() : std::string("off"));
  runtime::log_info(std::string("HarborMQ ") + kVersion + " ready in " +
                    std::to_string(ready_ms.count()) + " ms: " + status + ", log " +
                    describe_logging(*running));
  notify_ready(status);

  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;
    if (sig == SIGHUP) {
      int token = info.si_code == SI_QUEUE ? info.si_value.sival_int : 0;
      notify_reloading();
      runtime::log_info("reload requested (SIGHUP): re-reading " + source);
      auto outcome = reload(a, server, running);
      if (outcome.ok)
        runtime::log_info("reload: " + outcome.text);
      else
        runtime::log_error("reload refused: " + outcome.text);
      write_reload_status(pid_file, token, outcome.ok, outcome.text);
      notify_ready(status);
      continue;
    }
    runtime::log_info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                      ", shutting down");
    break;
  }
  notify_stopping();
  server.stop();
  std::remove(reload_status_path(pid_file).c_str());
  pid_lock->remove();
  runtime::log_info("HarborMQ stopped after " + format_uptime(Clock::now() - started_at));
  return 0;
}

}  // namespace harbor::app
