// Micro benchmark of SubscriptionTree::match and RetainedStore::match. Not part of the
// build; compile by hand, e.g.
//   g++ -std=c++20 -O2 -DNDEBUG -Isrc bench/micro_tree.cpp
//       src/broker/subscription_tree.cpp src/broker/retained_store.cpp -o /tmp/micro_tree
//       -pthread && /tmp/micro_tree
// Each figure is given as wall time and as the measuring thread's CPU time: on a shared,
// loaded machine the CPU figure is the one to compare between builds.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "broker/retained_store.hpp"
#include "broker/subscription_tree.hpp"

using namespace harbor::broker;
using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int main() {
  constexpr int kDevices = 100'000;
  SubscriptionTree tree(2);
  // Per-device filters, a few wildcard fan-in filters, one shared group.
  for (int d = 0; d < kDevices; ++d) {
    const std::string base = "site/" + std::to_string(d % 100) + "/dev/" + std::to_string(d);
    tree.subscribe(base + "/cmd", {static_cast<SessionId>(d + 1), 0}, {});
    tree.subscribe(base + "/#", {static_cast<SessionId>(d + 1), 0}, {});
  }
  tree.subscribe("site/+/dev/+/telemetry", {999'001, 1}, {});
  tree.subscribe("site/#", {999'002, 1}, {});
  for (SessionId s = 0; s < 8; ++s)
    tree.subscribe("$share/ingest/site/+/dev/+/telemetry", {s + 999'100, 1}, {});

  std::vector<std::string> topics;
  std::mt19937 rng(1);
  for (int i = 0; i < 4096; ++i) {
    const int d = static_cast<int>(rng() % kDevices);
    topics.push_back("site/" + std::to_string(d % 100) + "/dev/" + std::to_string(d) +
                     "/telemetry");
  }

  auto run = [&](unsigned slot, long iterations, size_t& total) {
    std::vector<SubscriptionMatch> out;
    for (long i = 0; i < iterations; ++i) {
      out.clear();
      tree.match(topics[static_cast<size_t>(i) & 4095], slot, out);
      total += out.size();
    }
  };
  constexpr long kIterations = 2'000'000;
  size_t total = 0;
  auto start = Clock::now();
  double cpu = thread_cpu_seconds();
  run(0, kIterations, total);
  cpu = thread_cpu_seconds() - cpu;
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "tree: %zu subscriptions, %zu levels; 1 thread: %.0f ns/match wall, %.0f ns/match cpu "
      "(%.1f matches/topic)\n",
      tree.size(), tree.node_count(), secs * 1e9 / kIterations, cpu * 1e9 / kIterations,
      static_cast<double>(total) / kIterations);

  size_t t1 = 0, t2 = 0;
  start = Clock::now();
  std::thread a([&] { run(0, kIterations, t1); });
  std::thread b([&] { run(1, kIterations, t2); });
  a.join();
  b.join();
  secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("tree: 2 threads, own slots: %.0f ns/match per thread\n", secs * 1e9 / kIterations);

  RetainedStore store(1);
  for (int d = 0; d < kDevices; ++d) {
    auto m = std::make_shared<Message>();
    m->topic = "site/" + std::to_string(d % 100) + "/dev/" + std::to_string(d) + "/state";
    m->payload = "on";
    store.set(std::move(m));
  }
  std::vector<MessagePtr> out;
  constexpr long kRetainedIterations = 200'000;
  start = Clock::now();
  cpu = thread_cpu_seconds();
  size_t found = 0;
  for (long i = 0; i < kRetainedIterations; ++i) {
    out.clear();
    store.match("site/" + std::to_string(i % 100) + "/dev/+/state", 0, 0, out);
    found += out.size();
  }
  cpu = thread_cpu_seconds() - cpu;
  secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "retained: %zu messages; 'site/N/dev/+/state' (1000 hits): %.1f us/match wall, %.1f us "
      "cpu\n",
      store.size(), secs * 1e6 / kRetainedIterations, cpu * 1e6 / kRetainedIterations);
  found = 0;
  start = Clock::now();
  cpu = thread_cpu_seconds();
  for (long i = 0; i < kRetainedIterations; ++i) {
    const long d = i % kDevices;
    out.clear();
    store.match("site/" + std::to_string(d % 100) + "/dev/" + std::to_string(d) + "/state", 0, 0,
                out);
    found += out.size();
  }
  cpu = thread_cpu_seconds() - cpu;
  secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("retained: exact filter: %.0f ns/match wall, %.0f ns cpu (%zu found)\n",
              secs * 1e9 / kRetainedIterations, cpu * 1e9 / kRetainedIterations, found);
  return 0;
}
