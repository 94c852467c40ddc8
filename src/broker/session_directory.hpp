// Which shard holds the session of a client id (DESIGN.md §3). A session lives on the shard
// its client first connected to, so most CONNECTs are handled where they were accepted; a
// later CONNECT with the same id on another shard is moved to the holder (takeover, resume).
// Entries are keyed by a 64-bit hash of the id, not the id: two ids with the same hash simply
// share a shard, and the directory costs no copy of the id. Any thread (striped locks,
// taken once per CONNECT and once per session end, never per message).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace harbor::broker {

class SessionDirectory {
 public:
  static uint64_t key_of(std::string_view client_id) { return std::hash<std::string_view>{}(client_id); }

  // The shard that holds, or is about to create, a session under `key`. If that is `here`
  // (also when no shard held one: `here` is recorded), one reservation of `here` is counted,
  // which the caller ends with release() when the session it stands for is gone (or was not
  // created after all). Another shard's index: nothing counted; move the connection there.
  unsigned claim(uint64_t key, unsigned here);
  // Ends one reservation of `shard`; the entry goes with the last one.
  void release(uint64_t key, unsigned shard);

  // Keys held and reservations counted (tests, metrics).
  size_t keys() const;
  uint32_t reservations(uint64_t key) const;

 private:
  struct Holder {
    uint32_t shard;
    uint32_t count;  // sessions (and CONNECTs on their way to one) on `shard` under this key
  };
  struct alignas(64) Stripe {
    mutable std::mutex mutex;
    std::unordered_map<uint64_t, Holder> holders;
  };
  static constexpr size_t kStripes = 64;
  Stripe& stripe(uint64_t key) { return stripes_[(key >> 7) % kStripes]; }
  const Stripe& stripe(uint64_t key) const { return stripes_[(key >> 7) % kStripes]; }

  std::array<Stripe, kStripes> stripes_;
};

}  // namespace harbor::broker
