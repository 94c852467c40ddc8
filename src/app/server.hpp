// The broker process: shared state, the shards, the acceptor and the store.
// Built and driven by the main thread: open() (restore, listen), run_until_stopped(), stop().
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "app/file_lock.hpp"
#include "app/http_auth_client.hpp"
#include "bridge/bridge.hpp"
#include "broker/context.hpp"
#include "broker/retained_store.hpp"
#include "broker/subscription_tree.hpp"
#include "config/config.hpp"
#include "http/api_server.hpp"
#include "runtime/shard.hpp"

namespace harbor::store {
class Store;
}

namespace harbor::app {

class Acceptor;

class Server {
 public:
  explicit Server(std::shared_ptr<const config::Config> cfg);
  ~Server();

  // Opens the store and restores state, starts the shards, opens the listener.
  tl::expected<void, std::string> start();
  // Port actually bound (useful with port 0).
  uint16_t port() const { return tcp_.port; }
  // listeners.ws's port actually bound; 0 without a WebSocket listener.
  uint16_t websocket_port() const { return ws_.port; }
  // listeners.ssl's port actually bound; 0 without a TLS listener.
  uint16_t tls_port() const { return ssl_.port; }
  // listeners.wss's port actually bound; 0 without a secure WebSocket listener.
  uint16_t secure_websocket_port() const { return wss_.port; }
  // Disconnects clients, stops the shards, drains and closes the store.
  void stop();
  // Runs the shards and the store with `cfg` from now on (a reload: the caller has kept
  // every key that needs a restart at its running value). Returns at once; each shard
  // switches on its own thread. With listeners.ssl or listeners.wss, the certificates and key are
  // read again first: when they cannot be used, nothing is applied and the error says why (naming
  // the key), and new connections keep getting the running certificate.
  tl::expected<void, std::string> reconfigure(std::shared_ptr<const config::Config> cfg);

  // The keys of the named ssl and wss listeners served ("listeners.ssl.extra"), whose
  // certificates reconfigure() reads again.
  std::vector<std::string> named_tls_listeners() const;

  // For the start banner: "tcp 127.0.0.1:1883" (", ws 127.0.0.1:8083/mqtt" with
  // listeners.ws, ", listeners.tcp.extra tcp 127.0.0.1:1884" per named listener; the ports
  // actually bound), and the store's path and size ("" when off).
  std::string describe_listeners() const;
  std::string describe_store() const;
  unsigned shard_count() const { return static_cast<unsigned>(shards_.size()); }

  const broker::BrokerContext& context() const { return ctx_; }

 private:
  std::shared_ptr<const config::Config> cfg_;
  std::unique_ptr<broker::SubscriptionTree> tree_;
  std::unique_ptr<broker::RetainedStore> retained_;
  std::optional<FileLock> data_lock_;  // DATA/harbormq.lock while the store is open
  std::unique_ptr<store::Store> store_;
  broker::BrokerContext ctx_;
  std::vector<std::unique_ptr<runtime::Shard>> shards_;
  // One per shard, all on tcp_.fd (each shard accepts its own connections).
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  // listeners.ws: one per shard on ws_.fd too (empty without it).
  std::vector<std::unique_ptr<Acceptor>> ws_acceptors_;
  // listeners.ssl: one per shard on ssl_.fd too (empty without it).
  std::vector<std::unique_ptr<Acceptor>> ssl_acceptors_;
  // listeners.wss: one per shard on wss_.fd too (empty without it); listeners.ssl's
  // certificate, WebSocket on wss_path_.
  std::vector<std::unique_ptr<Acceptor>> wss_acceptors_;
  // A listening socket: its descriptor and the address actually bound (with port 0, the
  // port the kernel chose).
  struct ListenerSocket {
    int fd = -1;
    std::string host;
    uint16_t port = 0;
  };
  // listeners.<kind>.<name>: its own socket, one acceptor per shard on it.
  struct NamedRuntime {
    std::string key;   // "listeners.tcp.extra"
    std::string kind;  // "tcp", "ws", "ssl", "wss"
    bool tls = false;
    ListenerSocket socket;  // closed after the acceptors are destroyed
    std::string path;  // ws, wss: read by the acceptors' shards while they run
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    ~NamedRuntime();
  };
  std::vector<std::unique_ptr<NamedRuntime>> named_;
  // Listens on `bind` (errors name `section`.bind) and logs one line naming the listener:
  // "listener listeners.tcp.extra: tcp 127.0.0.1:1884".
  static tl::expected<ListenerSocket, std::string> open_socket(const config::Config& cfg,
                                                               const std::string& section,
                                                               std::string_view kind,
                                                               const std::string& bind,
                                                               const std::string& path);
  tl::expected<void, std::string> open_named_listener(const config::NamedListener& l);
  // acceptors_of's first four slots are the unnamed listeners; the named ones follow.
  static constexpr size_t kUnnamedKinds = 4;
  // Configured bridges, each driven on its session's home shard (destroyed after the shards
  // stopped: stop() joins them first).
  std::vector<std::unique_ptr<bridge::Bridge>> bridges_;
  tl::expected<void, std::string> prepare_bridges(unsigned num_shards);
  // A reload: `specs` (the enabled bridges of `next`, built by bridge_specs_from) replace the
  // running bridges whose settings differ (by name); the unchanged ones keep their link and
  // session. Each removed or changed bridge is retired on its shard (its session kept when
  // the new one has its client id), each new one prepared and dialled there. One log line
  // per change. Main thread; cfg_ is still the running config.
  void reload_bridges(const config::Config& next, std::vector<bridge::Spec> specs);
  // auth.http_auth's requests (made at start; its thread starts with the first request).
  std::unique_ptr<HttpAuthClient> http_auth_;
  std::unique_ptr<http::ApiServer> api_;  // http_server {}; null when off
  tl::expected<void, std::string> lock_data_directory();
  tl::expected<void, std::string> open_websocket_listener();
  tl::expected<void, std::string> open_tls_listener();
  tl::expected<void, std::string> open_secure_websocket_listener();
  // Each shard's listener acceptors: tcp, then ws, ssl and wss when configured (null
  // otherwise), then each named listener's in the order they were opened.
  std::vector<Acceptor*> acceptors_of(size_t shard) const;

  // Each listener's socket (fd -1 while it is not open) and the address actually bound.
  ListenerSocket tcp_;
  ListenerSocket ws_;
  std::string ws_path_;  // read by the ws acceptors' shards while they run (never changes)
  ListenerSocket ssl_;
  ListenerSocket wss_;
  std::string wss_path_;  // as ws_path_, for the wss acceptors
  bool started_ = false;
};

}  // namespace harbor::app
