// ShardServices for driving one ShardBroker with no threads (unit tests and fuzz_broker):
// a manual clock, timers fired in time order when the driver advances time, post_to_shard
// tasks queued until the driver runs them. Single shard: a post to another shard or a
// move_link is misuse, reported through the callback given at construction (a test failure,
// a fuzzer violation). No GoogleTest here. Used from the driver's thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "broker/context.hpp"
#include "broker/shard_broker.hpp"

namespace harbor::broker::support {

class ManualServices : public ShardServices {
 public:
  explicit ManualServices(std::function<void(const std::string&)> on_misuse)
      : on_misuse_(std::move(on_misuse)) {}

  unsigned shard_index() const override { return 0; }
  int64_t now_steady_ms() const override { return steady_ms_; }
  int64_t now_unix_ms() const override { return unix_ms_; }

  uint64_t add_timer(int64_t at_steady_ms, std::function<void()> fn) override {
    uint64_t id = next_timer_id_++;
    timers_.emplace(id, Timer{at_steady_ms, std::move(fn)});
    return id;
  }
  void cancel_timer(uint64_t id) override { timers_.erase(id); }

  void post_to_shard(unsigned shard, std::function<void(ShardBroker&)> fn) override {
    if (shard != 0) on_misuse_("a single-shard broker posted to shard " + std::to_string(shard));
    posted_.push_back(std::move(fn));
  }
  void move_link(Link*, unsigned shard, mqtt::Connect) override {
    on_misuse_("move_link to shard " + std::to_string(shard) + " with a single shard");
  }
  void pause_link(uint64_t link_id) override { paused_links.push_back(link_id); }
  std::vector<uint64_t> paused_links;  // pause_link calls, in order

  // Advances both clocks by `ms`, firing due timers in time order (each at its own time).
  void advance(int64_t ms) {
    const int64_t target = steady_ms_ + ms;
    for (;;) {
      auto due = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.at <= target && (due == timers_.end() || it->second.at < due->second.at))
          due = it;
      }
      if (due == timers_.end()) break;
      const int64_t step = std::max<int64_t>(0, due->second.at - steady_ms_);
      steady_ms_ += step;
      unix_ms_ += step;
      auto fn = std::move(due->second.fn);
      timers_.erase(due);
      fn();
    }
    unix_ms_ += target - steady_ms_;
    steady_ms_ = target;
  }

  // Runs queued post_to_shard tasks (and any they queue) on `broker`; returns how many.
  size_t run_posted(ShardBroker& broker) {
    size_t n = 0;
    while (!posted_.empty()) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn(broker);
      ++n;
    }
    return n;
  }

  size_t posted_count() const { return posted_.size(); }
  size_t timer_count() const { return timers_.size(); }

 private:
  struct Timer {
    int64_t at;
    std::function<void()> fn;
  };
  std::function<void(const std::string&)> on_misuse_;
  int64_t steady_ms_ = 1'000'000;
  int64_t unix_ms_ = 1'700'000'000'000;
  uint64_t next_timer_id_ = 1;
  std::map<uint64_t, Timer> timers_;
  std::deque<std::function<void(ShardBroker&)>> posted_;
};

}  // namespace harbor::broker::support
