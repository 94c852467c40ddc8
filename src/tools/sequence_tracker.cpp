#include "tools/sequence_tracker.hpp"

namespace harbor::tools {

void StreamCounts::add(const StreamCounts& o) {
  unique += o.unique;
  duplicates += o.duplicates;
  out_of_order += o.out_of_order;
  // Summed over subscribers: each subscriber expects every message once.
  highest_plus1 += o.highest_plus1;
}

void SequenceStream::on_message(uint32_t seq) {
  size_t word = seq / 64;
  uint64_t bit = uint64_t{1} << (seq % 64);
  if (word >= seen_.size()) {
    size_t n = seen_.size() ? seen_.size() : 64;
    while (n <= word) n *= 2;
    seen_.resize(n, 0);
  }
  if (seen_[word] & bit) {
    ++counts_.duplicates;
    return;
  }
  seen_[word] |= bit;
  ++counts_.unique;
  if (uint64_t{seq} + 1 <= counts_.highest_plus1) {
    ++counts_.out_of_order;
  } else {
    counts_.highest_plus1 = uint64_t{seq} + 1;
  }
}

void SequenceTracker::collect(std::map<uint32_t, StreamCounts>& out) const {
  for (const auto& [publisher, stream] : streams_) out[publisher].add(stream.counts());
}

}  // namespace harbor::tools
