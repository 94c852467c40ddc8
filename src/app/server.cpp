#include "app/server.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "app/acceptor.hpp"
#include "app/bridge_specs.hpp"
#include "app/layer_settings.hpp"
#include "app/tls_error_key.hpp"
#include "runtime/log.hpp"
#include "runtime/socket.hpp"
#include "store/store.hpp"
#include "wire/tls.hpp"

namespace harbor::app {

using runtime::log_error;
using runtime::log_info;
using runtime::log_warn;

namespace {

// Reads one TLS listener's certificate, key and CAs (each build reads the files again);
// errors name `section`'s keys ("listeners.ssl", "listeners.ssl.<name>").
tl::expected<std::shared_ptr<const runtime::TlsListener>, std::string> tls_listener_from(
    const config::Config& cfg, const config::SslListener& keys, const std::string& section) {
  if (keys.use_cn_as_username && !keys.verify_peer) {
    return tl::unexpected(cfg.key_error(
        section + ".use_cn_as_username",
        "needs " + section + ".verify_peer = true (an unverified certificate names no one)"));
  }
  wire::TlsServerOptions options;
  options.certfile = keys.certfile;
  options.keyfile = keys.keyfile;
  options.key_password = keys.key_password;
  options.cacertfile = keys.cacertfile;
  options.verify_peer = keys.verify_peer;
  options.fail_if_no_peer_cert = keys.fail_if_no_peer_cert;
  auto context = wire::TlsContext::server(options);
  if (!context)
    return tl::unexpected(cfg.key_error(tls_error_key(context.error(), section), context.error()));
  return std::make_shared<const runtime::TlsListener>(
      runtime::TlsListener{*context, keys.use_cn_as_username});
}

// A wss listener without certificate keys of its own serves listeners.ssl's (NanoMQ's rule).
tl::expected<std::shared_ptr<const runtime::TlsListener>, std::string> tls_from_ssl_section(
    const config::Config& cfg, const std::string& wss_section) {
  if (cfg.ssl.certfile.empty() || cfg.ssl.keyfile.empty()) {
    return tl::unexpected(cfg.key_error(
        wss_section + ".bind",
        "needs listeners.ssl.certfile and listeners.ssl.keyfile (a wss listener without a "
        "certificate of its own serves the listeners.ssl section's, as in NanoMQ)"));
  }
  return tls_listener_from(cfg, cfg.ssl, "listeners.ssl");
}

// The TLS side of a named ssl or wss listener; null for tcp and ws.
tl::expected<std::shared_ptr<const runtime::TlsListener>, std::string> tls_of_named(
    const config::Config& cfg, const config::NamedListener& l) {
  using config::ListenerKind;
  if (l.kind != ListenerKind::Ssl && l.kind != ListenerKind::Wss) return nullptr;
  if (l.tls_from_ssl) return tls_from_ssl_section(cfg, l.key);
  return tls_listener_from(cfg, l.tls, l.key);
}

const config::NamedListener* find_named(const config::Config& cfg, const std::string& key) {
  const auto& n = cfg.named_listeners;
  for (const auto* list : {&n.tcp, &n.ws, &n.ssl, &n.wss}) {
    for (const auto& l : *list) {
      if (l.key == key) return &l;
    }
  }
  return nullptr;
}

}  // namespace

tl::expected<Server::ListenerSocket, std::string> Server::open_socket(const config::Config& cfg,
                                                                      const std::string& section,
                                                                      std::string_view kind,
                                                                      const std::string& bind,
                                                                      const std::string& path) {
  const std::string key = section + ".bind";
  auto where = runtime::parse_host_port(bind);
  if (!where) return tl::unexpected(cfg.key_error(key, where.error()));
  auto fd = runtime::listen_tcp(*where);
  if (!fd) return tl::unexpected(cfg.key_error(key, fd.error()));
  runtime::set_nodelay(*fd);  // inherited by the accepted sockets (Acceptor checks)
  ListenerSocket socket{*fd, where->host, runtime::local_port(*fd)};
  log_info("listener " + section + ": " + std::string(kind) + " " + socket.host + ":" +
           std::to_string(socket.port) + path);
  return socket;
}

Server::Server(std::shared_ptr<const config::Config> cfg) : cfg_(std::move(cfg)) {}

Server::~Server() {
  stop();
  if (tcp_.fd >= 0) ::close(tcp_.fd);
  if (ws_.fd >= 0) ::close(ws_.fd);
  if (ssl_.fd >= 0) ::close(ssl_.fd);
  if (wss_.fd >= 0) ::close(wss_.fd);
}

std::vector<Acceptor*> Server::acceptors_of(size_t shard) const {
  auto at = [shard](const std::vector<std::unique_ptr<Acceptor>>& all) {
    return all.empty() ? nullptr : all[shard].get();
  };
  std::vector<Acceptor*> all = {at(acceptors_), at(ws_acceptors_), at(ssl_acceptors_),
                                at(wss_acceptors_)};
  for (const auto& n : named_) all.push_back(n->acceptors[shard].get());
  return all;
}

tl::expected<void, std::string> Server::start() {
  unsigned n = cfg_->num_threads;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  ctx_.settings = std::make_shared<const broker::Settings>(broker_settings_from(*cfg_));
  ctx_.init_shards(n);
  ctx_.inbox_load = std::make_unique<std::atomic<int64_t>[]>(n);
  ctx_.shard_congested = std::make_unique<std::atomic<bool>[]>(n);
  tree_ = std::make_unique<broker::SubscriptionTree>(n);
  retained_ = std::make_unique<broker::RetainedStore>(n);
  ctx_.tree = tree_.get();
  ctx_.retained = retained_.get();
  ctx_.log = [](int level, const std::string& text) {
    runtime::log_line(static_cast<runtime::LogLevel>(level), text);
  };

  // Always made, so that a reload may add http_auth; idle (no thread) until asked.
  http_auth_ = std::make_unique<HttpAuthClient>(
      cfg_->auth.http, [this](unsigned shard, uint64_t link_id, broker::HttpAuthAnswer a) {
        runtime::Shard* s = shards_[shard].get();
        s->loop().post([s, link_id, a = std::move(a)]() mutable {
          s->broker().on_http_auth_answer(link_id, std::move(a));
        });
      });
  ctx_.http_auth = http_auth_.get();
  for (unsigned i = 0; i < n; ++i)
    shards_.push_back(std::make_unique<runtime::Shard>(i, ctx_, shards_));

  if (cfg_->sqlite.enabled) {
    if (auto locked = lock_data_directory(); !locked) return locked;
    auto opened = store::Store::open(store_settings_from(cfg_->sqlite));
    if (!opened) return tl::unexpected(cfg_->key_error("sqlite.mounted_file_path", opened.error()));
    store_ = std::move(*opened);
    // The store counts debug=1 … error=4; the logger debug=0 … error=3.
    store_->set_log([](int level, std::string_view text) {
      runtime::log_line(static_cast<runtime::LogLevel>(std::clamp(level - 1, 0, 3)), text);
    });
    log_info("store: " + store_->describe_size());
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    auto restored = store_->restore(now, std::max<uint32_t>(1, cfg_->sqlite.flush_mem_threshold));
    if (!restored)
      return tl::unexpected(cfg_->key_error("sqlite.mounted_file_path", restored.error()));
    for (auto& msg : restored->retained) retained_->set(msg);
    for (auto& rs : restored->sessions) {
      unsigned home = broker::home_shard(rs.session.client_id, n);
      // Shards are not running yet: restoring on this thread is the hand-over.
      shards_[home]->broker().restore_session(std::move(rs));
    }
    store_->set_durable_listener([this](uint64_t) {
      for (auto& s : shards_) s->notify_durable();
    });
    ctx_.store = store_.get();
    store_->start();
  }

  if (auto prepared = prepare_bridges(n); !prepared) return prepared;

  if (cfg_->ws.enabled) {
    if (auto opened = open_websocket_listener(); !opened) return opened;
  }
  if (cfg_->ssl.enabled) {
    if (auto opened = open_tls_listener(); !opened) return opened;
  }
  if (cfg_->wss.enabled) {
    if (auto opened = open_secure_websocket_listener(); !opened) return opened;
  }
  const auto& named = cfg_->named_listeners;
  for (const auto* list : {&named.tcp, &named.ws, &named.ssl, &named.wss}) {
    for (const auto& l : *list) {
      if (!l.enabled) continue;
      if (auto opened = open_named_listener(l); !opened) return opened;
    }
  }
  // The HTTP API before listeners.tcp too (same reason). A request that comes before the
  // shards run waits for them in its shard tasks (bounded), as any other.
  if (cfg_->http_server.enabled) {
    const auto& h = cfg_->http_server;
    api_ = std::make_unique<http::ApiServer>(
        http::HttpSettings{.ip_addr = h.ip_addr,
                           .port = h.port,
                           .threads = h.limit_conn,
                           .username = h.username,
                           .password = h.password,
                           .max_body = static_cast<size_t>(h.max_body),
                           .version = HARBOR_VERSION},
        ctx_, shards_);
    if (auto bound = api_->start(); !bound) {
      api_.reset();
      return tl::unexpected(cfg_->key_error("http_server.port", bound.error()));
    }
  }
  // listeners.tcp last: a client (or a script) that waits for its port finds every other
  // listener bound too.
  auto bound = open_socket(*cfg_, "listeners.tcp", "tcp", cfg_->tcp.bind, "");
  if (!bound) return tl::unexpected(bound.error());
  tcp_ = *bound;
  for (auto& s : shards_)
    acceptors_.push_back(std::make_unique<Acceptor>(tcp_.fd, *s, ctx_, cfg_->mqtt.max_connections));

  for (auto& s : shards_) s->start();
  for (size_t i = 0; i < shards_.size(); ++i) {
    shards_[i]->loop().post([all = acceptors_of(i)] {
      for (Acceptor* a : all)
        if (a != nullptr) a->start();
    });
  }
  for (auto& b : bridges_) b->start();
  started_ = true;
  return {};
}

void Server::stop() {
  if (!started_) return;
  started_ = false;
  // The API asks the shards: it stops before they do.
  if (api_) api_->stop();
  api_.reset();
  // Stop accepting first, each acceptor on the loop that owns it.
  std::mutex m;
  std::condition_variable cv;
  size_t removed = 0;
  for (size_t i = 0; i < shards_.size(); ++i) {
    shards_[i]->loop().post([&, all = acceptors_of(i)] {
      for (Acceptor* a : all)
        if (a != nullptr) a->stop();
      std::lock_guard lock(m);
      ++removed;
      cv.notify_one();
    });
  }
  {
    std::unique_lock lock(m);
    cv.wait_for(lock, std::chrono::seconds(5), [&] { return removed == shards_.size(); });
  }
  if (http_auth_) http_auth_->stop();  // answers no longer posted to stopping shards
  for (auto& s : shards_) s->begin_shutdown();
  for (auto& s : shards_) s->join();
  const auto& st = ctx_.stats;
  auto total = [this](broker::ShardCounter broker::ShardStats::*c) {
    return std::to_string(ctx_.total(c));
  };
  using broker::ShardStats;
  log_info("totals: " + total(&ShardStats::messages_in) + " messages in, " +
           total(&ShardStats::messages_out) + " out, " + total(&ShardStats::dropped_qos0_slow) +
           " QoS 0 dropped for stuck receivers, " + total(&ShardStats::dropped_queue_full) +
           " dropped on full queues, " + total(&ShardStats::dropped_expired) + " expired, " +
           total(&ShardStats::dropped_too_large) + " too large for the client, " +
           total(&ShardStats::refused_store) + " refused by the store, " +
           total(&ShardStats::no_subscribers) + " matched no subscriber, " +
           total(&ShardStats::queued) + " waited in session queues, " +
           total(&ShardStats::awaiting_rel_over_limit) +
           " MQTT 3.1.1 QoS 2 accepted beyond mqtt.max_awaiting_rel");
  log_info("totals: " + std::to_string(st.refused_max_connections.load()) +
           " connections refused over mqtt.max_connections, " +
           std::to_string(st.refused_fd_limit.load()) +
           " closed at accept while out of file descriptors, " + total(&ShardStats::auth_refused) +
           " CONNECTs refused by auth, " + total(&ShardStats::acl_denied) +
           " operations denied by the ACL");
  if (store_) {
    store_->stop();
    auto ss = store_->stats();
    char mean[32];
    std::snprintf(mean, sizeof mean, "%.1f", ss.mean_batch());
    log_info("store: " + std::to_string(ss.commits) + " commits of " +
             std::to_string(ss.committed_ops) + " ops (mean batch " + mean + ", max " +
             std::to_string(ss.max_batch) + "), " + std::to_string(ss.elided_ops) +
             " ops elided in-batch, " + std::to_string(ss.failed_commits) + " failed commits");
    log_info("store: closed (" + store_->describe_size() + ")");
  }
  acceptors_.clear();
  ws_acceptors_.clear();
  ssl_acceptors_.clear();
  wss_acceptors_.clear();
  named_.clear();
  if (ssl_.fd >= 0) ::close(ssl_.fd);
  ssl_.fd = -1;
  if (wss_.fd >= 0) ::close(wss_.fd);
  wss_.fd = -1;
  if (tcp_.fd >= 0) ::close(tcp_.fd);
  tcp_.fd = -1;
  if (ws_.fd >= 0) ::close(ws_.fd);
  ws_.fd = -1;
  if (data_lock_) data_lock_->remove();
  data_lock_.reset();
}

tl::expected<void, std::string> Server::open_websocket_listener() {
  auto bound = open_socket(*cfg_, "listeners.ws", "ws", cfg_->ws.bind, cfg_->ws.path);
  if (!bound) return tl::unexpected(bound.error());
  ws_ = *bound;
  ws_path_ = cfg_->ws.path;
  for (auto& s : shards_) {
    ws_acceptors_.push_back(
        std::make_unique<Acceptor>(ws_.fd, *s, ctx_, cfg_->mqtt.max_connections, &ws_path_));
  }
  return {};
}

tl::expected<void, std::string> Server::open_tls_listener() {
  // The certificates first: a broken file fails the start before any port is taken.
  auto tls = tls_listener_from(*cfg_, cfg_->ssl, "listeners.ssl");
  if (!tls) return tl::unexpected(tls.error());
  auto bound = open_socket(*cfg_, "listeners.ssl", "ssl", cfg_->ssl.bind, "");
  if (!bound) return tl::unexpected(bound.error());
  ssl_ = *bound;
  for (auto& s : shards_) {
    ssl_acceptors_.push_back(
        std::make_unique<Acceptor>(ssl_.fd, *s, ctx_, cfg_->mqtt.max_connections, nullptr, *tls));
  }
  return {};
}

tl::expected<void, std::string> Server::open_secure_websocket_listener() {
  // NanoMQ's wss has no certificate keys of its own: it serves listeners.ssl's certificate.
  auto tls = tls_from_ssl_section(*cfg_, "listeners.wss");
  if (!tls) return tl::unexpected(tls.error());
  auto bound = open_socket(*cfg_, "listeners.wss", "wss", cfg_->wss.bind, cfg_->wss.path);
  if (!bound) return tl::unexpected(bound.error());
  wss_ = *bound;
  wss_path_ = cfg_->wss.path;
  for (auto& s : shards_) {
    wss_acceptors_.push_back(std::make_unique<Acceptor>(
        wss_.fd, *s, ctx_, cfg_->mqtt.max_connections, &wss_path_, *tls));
  }
  return {};
}

Server::NamedRuntime::~NamedRuntime() {
  acceptors.clear();
  if (socket.fd >= 0) ::close(socket.fd);
}

tl::expected<void, std::string> Server::open_named_listener(const config::NamedListener& l) {
  using config::ListenerKind;
  auto tls = tls_of_named(*cfg_, l);  // before the port, as for listeners.ssl
  if (!tls) return tl::unexpected(tls.error());
  static constexpr std::string_view kKinds[] = {"tcp", "ws", "ssl", "wss"};
  const std::string_view kind = kKinds[static_cast<size_t>(l.kind)];
  auto bound = open_socket(*cfg_, l.key, kind, l.bind, l.path);
  if (!bound) return tl::unexpected(bound.error());
  auto runtime = std::make_unique<NamedRuntime>();
  runtime->key = l.key;
  runtime->kind = std::string(kind);
  runtime->socket = *bound;
  runtime->path = l.path;
  runtime->tls = *tls != nullptr;
  const bool websocket = l.kind == ListenerKind::Ws || l.kind == ListenerKind::Wss;
  for (auto& s : shards_) {
    runtime->acceptors.push_back(
        std::make_unique<Acceptor>(runtime->socket.fd, *s, ctx_, cfg_->mqtt.max_connections,
                                   websocket ? &runtime->path : nullptr, *tls));
  }
  named_.push_back(std::move(runtime));
  return {};
}

std::vector<std::string> Server::named_tls_listeners() const {
  std::vector<std::string> keys;
  for (const auto& n : named_) {
    if (n->tls) keys.push_back(n->key);
  }
  return keys;
}

tl::expected<void, std::string> Server::prepare_bridges(unsigned num_shards) {
  // Shards are not running yet: each bridge's session is made (or reconciled) here, before
  // any client can publish, so what matches a forward rule is queued from the first message.
  // A TLS bridge's contexts are built here too, once (bridge_specs_from reads the files).
  auto specs = bridge_specs_from(*cfg_);
  if (!specs) return tl::unexpected(specs.error());
  std::vector<std::string> configured;
  for (auto& spec : *specs) {
    const std::string id = spec.rules->client_id();
    configured.push_back(id);
    auto& shard = *shards_[broker::home_shard(id, num_shards)];
    bridges_.push_back(std::make_unique<bridge::Bridge>(std::move(spec), shard));
    bridges_.back()->prepare();
  }
  for (auto& s : shards_) s->broker().drop_unconfigured_bridges(configured);
  return {};
}

namespace {

const config::BridgeSettings* enabled_bridge(const config::Config& cfg, const std::string& name) {
  for (const auto& b : cfg.bridges)
    if (b.enabled && b.name == name) return &b;
  return nullptr;
}

}  // namespace

void Server::reload_bridges(const config::Config& next, std::vector<bridge::Spec> specs) {
  const unsigned n = static_cast<unsigned>(shards_.size());
  // What bridge_spec_from takes from outside the bridge's section counts too.
  const bool cache_changed =
      cfg_->bridge_cache != next.bridge_cache ||
      (!next.sqlite.enabled && cfg_->mqtt.max_mqueue_len != next.mqtt.max_mqueue_len);
  const bool window_changed = cfg_->mqtt.max_inflight_window != next.mqtt.max_inflight_window;
  auto unchanged = [&](const std::string& name) {
    const auto* before = enabled_bridge(*cfg_, name);
    const auto* after = enabled_bridge(next, name);
    return !cache_changed && before != nullptr && after != nullptr && *before == *after &&
           !(window_changed && after->max_inflight == 0);
  };
  std::vector<std::string> kept_ids;  // the client ids of the new set
  for (const auto& spec : specs) kept_ids.push_back(spec.rules->client_id());
  // Retire first: a changed bridge's new self is prepared after it on the same shard (the
  // same client id has the same home shard, and a loop runs its posts in order).
  std::vector<std::unique_ptr<bridge::Bridge>> running;
  running.swap(bridges_);
  for (auto& b : running) {
    if (unchanged(b->name())) {
      bridges_.push_back(std::move(b));
      continue;
    }
    const std::string id = b->client_id();
    const bool drop = std::find(kept_ids.begin(), kept_ids.end(), id) == kept_ids.end();
    const bool changed = enabled_bridge(next, b->name()) != nullptr;
    if (!changed) {
      log_info("reload: bridge \"" + b->name() + "\" removed" +
               (drop ? " (its session and queue are deleted)" : ""));
    }
    shards_[broker::home_shard(id, n)]->loop().post([gone = b.release(), drop] {
      bridge::Bridge::retire(std::unique_ptr<bridge::Bridge>(gone), drop);
    });
  }
  for (auto& spec : specs) {
    const std::string name = spec.rules->name;
    if (unchanged(name)) continue;
    const bool changed = enabled_bridge(*cfg_, name) != nullptr;
    log_info(
        "reload: bridge \"" + name + "\" " +
        (changed ? "changed (restarted; its session is kept when its client id is)" : "added"));
    auto& shard = *shards_[broker::home_shard(spec.rules->client_id(), n)];
    bridges_.push_back(std::make_unique<bridge::Bridge>(std::move(spec), shard));
    bridge::Bridge* b = bridges_.back().get();
    shard.loop().post([b] { b->prepare(); });
    b->start();
  }
}

tl::expected<void, std::string> Server::lock_data_directory() {
  const std::string& dir = cfg_->sqlite.mounted_file_path;
  auto fail = [&](const std::string& what) {
    return tl::unexpected(cfg_->key_error("sqlite.mounted_file_path", "\"" + dir + "\": " + what));
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail("cannot create the data directory: " + ec.message());
  if (::access(dir.c_str(), W_OK) != 0) {
    return fail(std::string("the data directory is not writable: ") + std::strerror(errno));
  }
  std::string path = (std::filesystem::path(dir) / "harbormq.lock").string();
  auto lock = FileLock::acquire(path);
  if (!lock) {
    if (lock.error().holder != 0) {
      return fail("the data directory is in use by another broker (pid " +
                  std::to_string(lock.error().holder) + ", lock " + path +
                  "); stop it first or give this broker its own directory");
    }
    return fail("cannot lock " + path + ": " + lock.error().message);
  }
  data_lock_.emplace(std::move(*lock));
  return {};
}

tl::expected<void, std::string> Server::reconfigure(std::shared_ptr<const config::Config> cfg) {
  // Certificates are re-read on every reload, changed paths or not (a renewed certificate is
  // usually written over the old file). One that cannot be used refuses the whole reload.
  std::shared_ptr<const runtime::TlsListener> tls;
  if (!ssl_acceptors_.empty() || !wss_acceptors_.empty()) {
    auto built = tls_listener_from(*cfg, cfg->ssl, "listeners.ssl");
    if (!built) return tl::unexpected(built.error());
    tls = *built;
  }
  // The named TLS listeners' too, all before anything is applied. The running set of named
  // listeners stays (merge_for_reload), so each is in `cfg`.
  std::vector<std::shared_ptr<const runtime::TlsListener>> named_tls(named_.size());
  for (size_t k = 0; k < named_.size(); ++k) {
    const config::NamedListener* l = find_named(*cfg, named_[k]->key);
    if (!named_[k]->tls || l == nullptr) continue;
    auto built = tls_of_named(*cfg, *l);
    if (!built) return tl::unexpected(built.error());
    named_tls[k] = *built;
  }
  // The bridges' TLS files too: bridge_specs_from reads them for every enabled bridge.
  auto bridge_specs = bridge_specs_from(*cfg);
  if (!bridge_specs) return tl::unexpected(bridge_specs.error());
  reload_bridges(*cfg, std::move(*bridge_specs));
  cfg_ = cfg;
  // Each acceptor reads the limit (and takes the TLS context) on its own shard's loop.
  for (size_t i = 0; i < acceptors_.size(); ++i) {
    shards_[i]->loop().post(
        [all = acceptors_of(i), tls, named_tls, max = cfg->mqtt.max_connections] {
          for (Acceptor* a : all)
            if (a != nullptr) a->set_max_connections(max);
          for (Acceptor* a : {all[2], all[3]})
            if (a != nullptr) a->set_tls(tls);
          for (size_t k = 0; k < named_tls.size(); ++k)
            if (named_tls[k] != nullptr) all[kUnnamedKinds + k]->set_tls(named_tls[k]);
        });
  }
  if (http_auth_) http_auth_->reconfigure(cfg->auth.http);
  auto settings = std::make_shared<const broker::Settings>(broker_settings_from(*cfg));
  for (auto& s : shards_) {
    s->loop().post([shard = s.get(), settings] { shard->broker().set_settings(settings); });
  }
  if (store_) {
    store_->set_disk_cache_size(cfg->sqlite.disk_cache_size);
    store_->set_disk_cache_bytes(cfg->sqlite.disk_cache_bytes);
  }
  return {};
}

std::string Server::describe_listeners() const {
  std::string text = "tcp " + tcp_.host + ":" + std::to_string(tcp_.port);
  if (ws_.fd >= 0) text += ", ws " + ws_.host + ":" + std::to_string(ws_.port) + ws_path_;
  if (ssl_.fd >= 0) text += ", ssl " + ssl_.host + ":" + std::to_string(ssl_.port);
  if (wss_.fd >= 0) text += ", wss " + wss_.host + ":" + std::to_string(wss_.port) + wss_path_;
  for (const auto& n : named_) {
    text += ", " + n->key + " " + n->kind + " " + n->socket.host + ":" +
            std::to_string(n->socket.port) + n->path;
  }
  return text;
}

std::string Server::describe_store() const {
  if (!store_) return "";
  return store_->describe_size();
}

}  // namespace harbor::app
