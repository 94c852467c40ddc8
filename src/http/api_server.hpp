// The management HTTP API (docs/http-api.md): cpp-httplib's server on a thread of its own,
// started and stopped by app/server.cpp. It never touches shard data: counters are read from
// BrokerContext's atomics, client lists are asked of each shard by posting to its loop and
// waiting (bounded) for the answer.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <tl/expected.hpp>
#include <vector>

#include "broker/context.hpp"
#include "runtime/shard.hpp"

namespace httplib {
class Server;
}

namespace harbor::http {

// The http_server keys, as this layer's own settings (app/ converts the config).
struct HttpSettings {
  std::string ip_addr = "127.0.0.1";
  uint16_t port = 8081;  // 0: the system chooses
  unsigned threads = 2;
  std::string username;  // empty with an empty password: no authentication
  std::string password;
  size_t max_body = 65535;
  std::string version;  // shown by /brokers and /nodes
};

class ApiServer {
 public:
  // `ctx` and `shards` outlive the server (app/server.cpp stops it before the shards).
  ApiServer(HttpSettings settings, broker::BrokerContext& ctx,
            std::vector<std::unique_ptr<runtime::Shard>>& shards);
  ~ApiServer();

  // Main thread: binds, then serves on a new thread. Returns the bound port, or why not.
  tl::expected<uint16_t, std::string> start();
  // Main thread: stops listening, waits for requests in progress, joins the thread.
  void stop();

 private:
  void routes();

  HttpSettings settings_;
  broker::BrokerContext& ctx_;
  std::vector<std::unique_ptr<runtime::Shard>>& shards_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int64_t started_steady_ms_ = 0;
};

}  // namespace harbor::http
