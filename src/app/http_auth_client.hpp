// auth.http_auth: asks an HTTP server whether a client may connect (auth_req), whether it
// is a superuser (super_req) and whether it may publish or subscribe to a topic (acl_req),
// with NanoMQ's keys and placeholders, on a thread of its own
// (libcurl's multi interface) so that a slow or dead server never stalls a shard. At most
// pool_size requests are in flight; up to kMaxWaiting more wait, beyond that a CONNECT is
// answered Unavailable at once. Answers (200: allowed, 4xx: refused, anything else or no
// answer within the timeouts: unavailable) go back to the asking shard through `deliver`.
// Allowed and refused answers are remembered for cache_ttl (ours; 0 = not at all), keyed by
// a SHA-256 of the request, never the password itself.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "broker/ports.hpp"
#include "config/auth_settings.hpp"

namespace harbor::app {

class HttpAuthClient final : public broker::HttpAuthPort {
 public:
  static constexpr size_t kMaxWaiting = 8192;
  static constexpr size_t kMaxCached = 4096;

  // Called on the client's thread (or on the asking thread when the queue is full).
  using Deliver = std::function<void(unsigned shard, uint64_t link_id, broker::HttpAuthAnswer)>;

  HttpAuthClient(config::HttpAuthSettings settings, Deliver deliver);
  ~HttpAuthClient() override;  // stops the thread; unanswered requests are dropped
  HttpAuthClient(const HttpAuthClient&) = delete;
  HttpAuthClient& operator=(const HttpAuthClient&) = delete;

  // Any thread. The thread starts with the first request.
  void ask(broker::HttpAuthRequest request) override;
  // Requests asked from now on use `settings` (reload); the cache is emptied.
  void reconfigure(config::HttpAuthSettings settings);
  // Ends the thread (idempotent); later asks are answered Unavailable.
  void stop();

  struct Job;

 private:
  void run();
  void start_job(std::unique_ptr<Job> job, void* multi);
  void finish_job(Job* job, long status, int curl_code, const char* error);
  // Hands `a` to the asking shard, marked with the request's kind.
  void answer(const broker::HttpAuthRequest& r, broker::HttpAuthAnswer a);

  std::mutex mu_;
  config::HttpAuthSettings settings_;  // guarded by mu_
  uint64_t generation_ = 0;            // reconfigure() count, guarded by mu_
  std::deque<broker::HttpAuthRequest> waiting_;
  bool stopping_ = false;
  bool started_ = false;
  void* multi_ = nullptr;  // CURLM*, made by the thread; wakeups under mu_
  std::thread thread_;
  Deliver deliver_;

  // The client thread's own state.
  struct Cached {
    broker::HttpAuthAnswer answer;
    int64_t expires_ms = 0;
    uint64_t generation = 0;
  };
  std::unordered_map<std::string, Cached> cache_;
  std::unordered_set<Job*> in_flight_;  // owned; freed by finish_job or at the end of run()
};

}  // namespace harbor::app
