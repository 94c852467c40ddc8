#include "app/broker_commands.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/server.hpp"
#include "config/config.hpp"
#include "runtime/log.hpp"

namespace harbor::app {

namespace {

struct StartArgs {
  std::string conf;
  std::vector<std::string> sets;
  std::string pid_file;
};

tl::expected<std::shared_ptr<const config::Config>, std::string> load_config(const StartArgs& a) {
  config::LoadOptions opts;
  opts.path = a.conf;
  opts.overrides = a.sets;
  opts.read_environment = true;
  auto loaded = config::load(opts);
  if (!loaded) return tl::unexpected(loaded.error().to_string());
  for (const auto& w : loaded->warnings) runtime::log_warn("config: " + w);
  return loaded->config;
}

std::string pid_file_of(const StartArgs& a, const config::Config* cfg) {
  if (!a.pid_file.empty()) return a.pid_file;
  if (cfg) return cfg->pid_file;
  return "/tmp/harbormq.pid";
}

int run_broker(const StartArgs& a) {
  auto cfg = load_config(a);
  if (!cfg) {
    std::fprintf(stderr, "harbormq: bad configuration: %s\n", cfg.error().c_str());
    return 2;
  }
  runtime::LogLevel level;
  if (runtime::parse_log_level((*cfg)->log.level, level)) runtime::set_log_level(level);

  // Signals are taken by this thread with sigwait; every other thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Server server(*cfg);
  if (auto started = server.start(); !started) {
    std::fprintf(stderr, "harbormq: cannot start: %s\n", started.error().c_str());
    return 1;
  }
  std::string pid_file = pid_file_of(a, cfg->get());
  {
    std::ofstream pf(pid_file, std::ios::trunc);
    if (pf) pf << getpid() << "\n";
    else runtime::log_warn("cannot write pid file " + pid_file);
  }
  runtime::log_info("harbormq started (pid " + std::to_string(getpid()) + ")");

  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      // Reload: re-read and validate the file; settings are applied on restart.
      auto fresh = load_config(a);
      if (!fresh) runtime::log_error("reload: " + fresh.error() + " (keeping the running configuration)");
      else runtime::log_warn("reload: configuration is valid; changed settings take effect on restart");
      continue;
    }
    runtime::log_info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
    break;
  }
  server.stop();
  unlink(pid_file.c_str());
  runtime::log_info("harbormq stopped");
  return 0;
}

// Reads the pid of a running broker; 0 if none.
pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  if (kill(static_cast<pid_t>(pid), 0) != 0) return 0;
  return static_cast<pid_t>(pid);
}

std::string resolve_pid_file(const StartArgs& a) {
  if (!a.pid_file.empty()) return a.pid_file;
  auto cfg = load_config(a);
  return pid_file_of(a, cfg ? cfg->get() : nullptr);
}

int stop_broker(const StartArgs& a, bool quiet_if_missing) {
  std::string path = resolve_pid_file(a);
  pid_t pid = read_pid(path);
  if (pid == 0) {
    if (!quiet_if_missing) std::fprintf(stderr, "harbormq: no running broker (pid file %s)\n", path.c_str());
    return quiet_if_missing ? 0 : 1;
  }
  kill(pid, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (kill(pid, 0) != 0) {
      std::printf("harbormq: stopped pid %d\n", pid);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "harbormq: pid %d did not stop within 30 s\n", pid);
  return 1;
}

void add_common(CLI::App* sub, StartArgs& a) {
  sub->add_option("--conf,-c", a.conf, "HOCON config file (NanoMQ nanomq.conf keys); default: built-in defaults")
      ->check(CLI::ExistingFile);
  sub->add_option("--set", a.sets, "Override a key: --set mqtt.max_inflight_window=100 (repeatable)");
  sub->add_option("--pid-file", a.pid_file, "Pid file (default: system.pid_file)");
}

}  // namespace

void add_broker_commands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<StartArgs>();
  auto* start = app.add_subcommand("start", "Run the broker in the foreground (logs to stderr)");
  add_common(start, *args);
  start->callback([args, exit_code] { *exit_code = run_broker(*args); });

  auto* stop = app.add_subcommand("stop", "Stop a running broker (SIGTERM through its pid file)");
  add_common(stop, *args);
  stop->callback([args, exit_code] { *exit_code = stop_broker(*args, false); });

  auto* restart = app.add_subcommand("restart", "Stop the running broker, then start in the foreground");
  add_common(restart, *args);
  restart->callback([args, exit_code] {
    int rc = stop_broker(*args, true);
    *exit_code = rc != 0 ? rc : run_broker(*args);
  });

  auto* reload = app.add_subcommand("reload", "Ask the running broker to re-read its configuration (SIGHUP)");
  add_common(reload, *args);
  reload->callback([args, exit_code] {
    std::string path = resolve_pid_file(*args);
    pid_t pid = read_pid(path);
    if (pid == 0) {
      std::fprintf(stderr, "harbormq: no running broker (pid file %s)\n", path.c_str());
      *exit_code = 1;
      return;
    }
    kill(pid, SIGHUP);
    *exit_code = 0;
  });
}

}  // namespace harbor::app
