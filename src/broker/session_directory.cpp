#include "broker/session_directory.hpp"

#include <cassert>

namespace harbor::broker {

unsigned SessionDirectory::claim(uint64_t key, unsigned here) {
  Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  auto [it, inserted] = s.holders.try_emplace(key, Holder{here, 0});
  if (it->second.shard != here) return it->second.shard;
  ++it->second.count;
  return here;
}

void SessionDirectory::release(uint64_t key, unsigned shard) {
  Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  auto it = s.holders.find(key);
  assert(it != s.holders.end() && it->second.shard == shard && it->second.count > 0);
  if (it == s.holders.end() || it->second.shard != shard) return;
  if (--it->second.count == 0) s.holders.erase(it);
}

size_t SessionDirectory::keys() const {
  size_t n = 0;
  for (const Stripe& s : stripes_) {
    std::lock_guard lock(s.mutex);
    n += s.holders.size();
  }
  return n;
}

uint32_t SessionDirectory::reservations(uint64_t key) const {
  const Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  auto it = s.holders.find(key);
  return it == s.holders.end() ? 0 : it->second.count;
}

}  // namespace harbor::broker
