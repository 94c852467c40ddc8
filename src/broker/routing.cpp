// ShardBroker, routing: matching a message against the subscription tree, local delivery
// or a batch to another shard, and that shard's side of the batch.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

bool ShardBroker::route(const MessagePtr& msg, const AckToken& token, uint64_t publisher_link) {
  matches_.clear();
  SharedSelection selection;
  selection.strategy = settings_->shared_strategy;
  if (selection.strategy == SharedStrategy::HashClientId) {
    // The publishing session is on this shard (its home): route runs where it published.
    if (auto it = by_id_.find(msg->origin); it != by_id_.end())
      selection.publisher = it->second->client_id();
  }
  ctx_.tree->match(msg->topic, shard_, matches_, selection);
  if (matches_.empty()) {
    stats_.no_subscribers.add();
    return false;
  }
  bool full = false;  // a receiver of it is full: pause the publisher
  // Overlapping subscriptions of one session give one delivery at the highest QoS with
  // every subscription identifier [MQTT-3.3.4-2], [MQTT-3.3.4-3]; shared ones stand alone.
  if (matches_.size() > 1) {
    std::sort(matches_.begin(), matches_.end(),
              [](const SubscriptionMatch& a, const SubscriptionMatch& b) {
                if (a.shared != b.shared) return a.shared < b.shared;
                return a.who.session < b.who.session;
              });
  }
  size_t i = 0;
  while (i < matches_.size()) {
    const SubscriptionMatch& first = matches_[i];
    size_t j = i;
    mqtt::QoS granted = 0;
    bool any = false;
    bool retain = false;
    std::vector<uint32_t> sub_ids;
    do {
      const SubscriptionMatch& m = matches_[j];
      // No Local: not to the publishing session [MQTT-3.8.3-3].
      if (!(m.options.no_local && m.who.session == msg->origin)) {
        any = true;
        granted = std::max(granted, m.options.qos);
        if (m.options.retain_as_published && msg->retain) retain = true;  // [MQTT-3.3.1-12]
        if (m.options.subscription_id) sub_ids.push_back(m.options.subscription_id);
      }
      ++j;
    } while (!first.shared && j < matches_.size() && !matches_[j].shared &&
             matches_[j].who.session == first.who.session);
    if (any) {
      mqtt::QoS qos = std::min(granted, msg->qos);
      if (first.who.shard == shard_) {
        auto it = by_id_.find(first.who.session);
        if (it != by_id_.end() &&
            deliver_local(it->second, msg, qos, retain, std::move(sub_ids), token.get(),
                          first.group) &&
            it->second->id() != msg->origin)  // never wait for oneself (it would not read acks)
          full = true;
      } else {
        // The destination shard tells us (pause_publishers) if the receiver is full; a long
        // inbox means that shard is behind as a whole.
        if (token) token->add_part();  // finished by deliver_batch on that shard
        outboxes_[first.who.shard].push_back(RemoteDelivery{first.who.session, msg, qos, retain,
                                                            std::move(sub_ids), token,
                                                            publisher_link, shard_, first.group});
        // What that shard has not processed yet, and what this iteration adds to it, bound
        // how far a publisher runs ahead of a receiver there before it hears it is full.
        const auto& outbox = outboxes_[first.who.shard];
        if (ctx_.inbox_load && static_cast<int64_t>(outbox.size()) +
                                       ctx_.inbox_load[first.who.shard].load(std::memory_order_relaxed) >
                                   kCongestedInbox)
          full = true;
      }
    }
    i = j;
  }
  return full && publisher_link != 0;
}

void ShardBroker::flush_outboxes() {
  for (unsigned shard = 0; shard < outboxes_.size(); ++shard) {
    if (outboxes_[shard].empty()) continue;
    auto batch = std::make_shared<std::vector<RemoteDelivery>>(std::move(outboxes_[shard]));
    outboxes_[shard].clear();
    if (ctx_.inbox_load)
      ctx_.inbox_load[shard].fetch_add(static_cast<int64_t>(batch->size()), std::memory_order_relaxed);
    services_.post_to_shard(shard, [batch](ShardBroker& b) { b.deliver_batch(*batch); });
  }
  // Acknowledgements finished here for publishers of other shards: one task per shard.
  for (unsigned shard = 0; shard < ack_outboxes_.size(); ++shard) {
    if (ack_outboxes_[shard].empty()) continue;
    services_.post_to_shard(shard, [acks = std::move(ack_outboxes_[shard])](ShardBroker& b) {
      for (const AckRelease& r : acks) b.on_ack_ready(r);
    });
    ack_outboxes_[shard].clear();
  }
}

void ShardBroker::deliver_batch(std::vector<RemoteDelivery>& batch) {
  std::vector<std::vector<uint64_t>> pause;  // per origin shard: publishers to pause
  for (auto& d : batch) {
    auto it = by_id_.find(d.session);
    if (it != by_id_.end() &&
        deliver_local(it->second, d.msg, d.qos, d.retain, std::move(d.subscription_ids),
                      d.token.get(), d.shared_group) &&
        d.publisher_link != 0 && it->second->id() != d.msg->origin) {
      if (pause.empty()) pause.resize(ctx_.num_shards);
      auto& ids = pause[d.publisher_shard];
      if (std::find(ids.begin(), ids.end(), d.publisher_link) == ids.end()) ids.push_back(d.publisher_link);
    }
    finish_ack_part(d.token);  // this part is done
    d.token.reset();
  }
  for (unsigned shard = 0; shard < pause.size(); ++shard) {
    if (pause[shard].empty()) continue;
    services_.post_to_shard(shard, [ids = std::move(pause[shard])](ShardBroker& b) {
      for (uint64_t id : ids) b.services_.pause_link(id);
    });
  }
  if (ctx_.inbox_load)
    ctx_.inbox_load[shard_].fetch_sub(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
}

}  // namespace harbor::broker
