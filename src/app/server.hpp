// The broker process: shared state, the shards, the acceptor and the store.
// Built and driven by the main thread: open() (restore, listen), run_until_stopped(), stop().
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "broker/context.hpp"
#include "broker/retained_store.hpp"
#include "broker/subscription_tree.hpp"
#include "config/config.hpp"
#include "runtime/shard.hpp"

namespace harbor::store {
class Store;
}

namespace harbor::app {

class Server {
 public:
  explicit Server(std::shared_ptr<const config::Config> cfg);
  ~Server();

  // Opens the store and restores state, starts the shards, opens the listener.
  tl::expected<void, std::string> start();
  // Port actually bound (useful with port 0).
  uint16_t port() const { return port_; }
  // Disconnects clients, stops the shards, drains and closes the store.
  void stop();

  const broker::BrokerContext& context() const { return ctx_; }

 private:
  class Acceptor;

  std::shared_ptr<const config::Config> cfg_;
  std::unique_ptr<broker::SubscriptionTree> tree_;
  std::unique_ptr<broker::RetainedStore> retained_;
  std::unique_ptr<store::Store> store_;
  broker::BrokerContext ctx_;
  std::vector<std::unique_ptr<runtime::Shard>> shards_;
  std::unique_ptr<Acceptor> acceptor_;
  uint16_t port_ = 0;
  bool started_ = false;
};

}  // namespace harbor::app
