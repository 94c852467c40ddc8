#include "http/broker_probe.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>

namespace harbor::http {

Counters read_counters(const broker::BrokerContext& ctx) {
  using S = broker::ShardStats;
  Counters c;
  c.connections = ctx.stats.connections.load(std::memory_order_relaxed);
  c.sockets_open = ctx.stats.sockets_open.load(std::memory_order_relaxed);
  c.sessions = ctx.stats.sessions.load(std::memory_order_relaxed);
  c.refused_max_connections = ctx.stats.refused_max_connections.load(std::memory_order_relaxed);
  c.refused_fd_limit = ctx.stats.refused_fd_limit.load(std::memory_order_relaxed);
  c.subscriptions = ctx.tree != nullptr ? ctx.tree->size() : 0;
  c.retained = ctx.retained != nullptr ? ctx.retained->size() : 0;
  c.messages_in = ctx.total(&S::messages_in);
  c.messages_out = ctx.total(&S::messages_out);
  c.dropped_queue_full = ctx.total(&S::dropped_queue_full);
  c.dropped_qos0_slow = ctx.total(&S::dropped_qos0_slow);
  c.dropped_expired = ctx.total(&S::dropped_expired);
  c.dropped_too_large = ctx.total(&S::dropped_too_large);
  c.refused_store = ctx.total(&S::refused_store);
  c.no_subscribers = ctx.total(&S::no_subscribers);
  c.queued = ctx.total(&S::queued);
  c.auth_refused = ctx.total(&S::auth_refused);
  c.acl_denied = ctx.total(&S::acl_denied);
  return c;
}

std::optional<std::vector<broker::ClientSummary>> ask_clients(
    std::vector<std::unique_ptr<runtime::Shard>>& shards, std::chrono::milliseconds timeout) {
  // Shared with the posted tasks: a shard that answers after the timeout writes into it
  // after this function has returned.
  struct Answers {
    std::mutex m;
    std::condition_variable cv;
    size_t pending = 0;
    std::vector<broker::ClientSummary> all;
  };
  auto answers = std::make_shared<Answers>();
  answers->pending = shards.size();
  for (auto& shard : shards) {
    runtime::Shard* s = shard.get();
    s->loop().post([s, answers] {
      auto mine = s->broker().client_summaries();
      std::lock_guard lock(answers->m);
      for (auto& c : mine) answers->all.push_back(std::move(c));
      if (--answers->pending == 0) answers->cv.notify_one();
    });
  }
  std::unique_lock lock(answers->m);
  if (!answers->cv.wait_for(lock, timeout, [&] { return answers->pending == 0; }))
    return std::nullopt;
  return std::move(answers->all);
}

ProcessInfo read_process(std::string version, int64_t uptime_ms) {
  ProcessInfo p;
  p.version = std::move(version);
  p.uptime_ms = uptime_ms;
  p.now_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) == 0 && uptime_ms > 0) {
    double cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0 +
                    (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0;
    p.cpu_percent = 100.0 * cpu_ms / static_cast<double>(uptime_ms);
  }
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (statm >> size >> resident)
    p.memory_bytes = resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return p;
}

}  // namespace harbor::http
