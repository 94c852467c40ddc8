// One ShardBroker and everything it shares (subscription tree, retained store, context) on a
// single shard, for drivers with no threads: the broker unit fixtures and fuzz_broker. No
// GoogleTest here.
#pragma once

#include <memory>

#include "broker/context.hpp"
#include "broker/retained_store.hpp"
#include "broker/settings.hpp"
#include "broker/shard_broker.hpp"
#include "broker/subscription_tree.hpp"

namespace harbor::broker::support {

struct OneShard {
  std::unique_ptr<SubscriptionTree> tree;
  std::unique_ptr<RetainedStore> retained;
  std::unique_ptr<BrokerContext> ctx;
  std::unique_ptr<ShardBroker> broker;  // declared last: destroyed first

  // (Re)builds all four with `settings`; `store` nullptr runs without persistence. An earlier
  // broker goes before what it shared.
  void build(const Settings& settings, ShardServices& services, PersistenceSink* store) {
    broker.reset();
    ctx.reset();
    tree = std::make_unique<SubscriptionTree>(1);
    retained = std::make_unique<RetainedStore>(1);
    ctx = std::make_unique<BrokerContext>();
    ctx->settings = std::make_shared<const Settings>(settings);
    ctx->init_shards(1);
    ctx->tree = tree.get();
    ctx->retained = retained.get();
    ctx->store = store;
    broker = std::make_unique<ShardBroker>(*ctx, services);
  }
};

}  // namespace harbor::broker::support
