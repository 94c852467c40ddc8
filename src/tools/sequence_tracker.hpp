// Per-publisher delivery accounting on the subscriber side of the bench: which sequence
// numbers arrived, duplicates, out-of-order arrivals and gaps. One owner thread.
// Memory: one bit per sequence number up to the highest seen (1 M messages = 128 KiB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

namespace harbor::tools {

struct StreamCounts {
  uint64_t unique = 0;        // distinct sequence numbers received
  uint64_t duplicates = 0;    // receptions of a sequence number already seen
  uint64_t out_of_order = 0;  // first receptions below the highest sequence already seen
  uint64_t highest_plus1 = 0; // highest sequence number seen + 1 (0 when nothing arrived)
  // Sequence numbers below the highest seen that never arrived.
  uint64_t gaps() const { return highest_plus1 - unique; }
  void add(const StreamCounts& o);
};

class SequenceStream {
 public:
  void on_message(uint32_t seq);
  const StreamCounts& counts() const { return counts_; }

 private:
  std::vector<uint64_t> seen_;  // bitset
  StreamCounts counts_;
};

// All publishers seen by one subscriber.
class SequenceTracker {
 public:
  void on_message(uint32_t publisher, uint32_t seq) { streams_[publisher].on_message(seq); }
  // Adds this tracker's counts to `out`, keyed by publisher.
  void collect(std::map<uint32_t, StreamCounts>& out) const;

 private:
  std::unordered_map<uint32_t, SequenceStream> streams_;
};

}  // namespace harbor::tools
