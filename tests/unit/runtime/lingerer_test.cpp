// The Lingerer's three bounds (runtime/lingerer.hpp): sockets per shard, bytes discarded per
// socket, time per socket. Real sockets: the Lingerer holds one end of a Unix socketpair and
// the test is the peer, which can tell the Lingerer's end still open (its send succeeds)
// from closed (EPIPE). Time is passed in, so no test sleeps for the 2 s deadline.
#include "runtime/lingerer.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/event_loop.hpp"

namespace harbor::runtime {
namespace {

// One connected pair: `ours` goes to the Lingerer (non-blocking, as the shard's sockets are),
// `peer` stays with the test.
struct Pair {
  int ours = -1;
  int peer = -1;
};

Pair socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    ADD_FAILURE() << "socketpair: " << std::strerror(errno);
    return {};
  }
  return {fds[0], fds[1]};
}

// Sends one byte from the peer: true while the Lingerer's end is open, false once it is
// closed (EPIPE). Each probe byte is one more byte for the Lingerer to discard.
bool lingerer_end_open(int peer) {
  const char probe = 'p';
  ssize_t n = ::send(peer, &probe, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n == 1) return true;
  EXPECT_EQ(errno, EPIPE) << std::strerror(errno);
  return false;
}

// Our end was shut down for writing: the peer reads end of stream (not an error).
bool peer_reads_eof(int peer) {
  char c;
  return ::recv(peer, &c, 1, MSG_DONTWAIT) == 0;
}

// Runs the loop until nothing is ready (the Lingerer has read all it was sent).
void drain(EventLoop& loop) {
  for (int i = 0; i < 64; ++i) loop.run_once(0);
}

class LingererTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (int fd : peers_) ::close(fd);
  }
  Pair pair() {
    Pair p = socket_pair();
    peers_.push_back(p.peer);
    return p;
  }
  EventLoop loop_;
  std::vector<int> peers_;
};

TEST_F(LingererTest, DefaultsAreTheDocumentedConstants) {
  Lingerer::Limits d;
  EXPECT_EQ(d.linger_ms, 2000);
  EXPECT_EQ(d.linger_bytes, 1024u * 1024u);
  EXPECT_EQ(d.max_lingering, 4096u);
}

TEST_F(LingererTest, ShutsDownWritingAndDiscardsWhatThePeerSends) {
  Lingerer lingerer(loop_);
  Pair p = pair();
  lingerer.add(p.ours, 0);
  EXPECT_EQ(lingerer.lingering(), 1u);
  EXPECT_TRUE(peer_reads_eof(p.peer));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(lingerer_end_open(p.peer));
  drain(loop_);
  lingerer.sweep(1);
  EXPECT_EQ(lingerer.lingering(), 1u);
  EXPECT_TRUE(lingerer_end_open(p.peer));
}

TEST_F(LingererTest, APeerThatClosesIsClosedAndFreedAtTheNextSweep) {
  Lingerer lingerer(loop_);
  Pair p = pair();
  lingerer.add(p.ours, 0);
  ::shutdown(p.peer, SHUT_WR);
  drain(loop_);
  // Closed in on_io (the peer gets EPIPE), freed by the sweep.
  EXPECT_FALSE(lingerer_end_open(p.peer));
  lingerer.sweep(1);
  EXPECT_EQ(lingerer.lingering(), 0u);
}

TEST_F(LingererTest, ASocketBeyondTheCountBoundIsClosedAtOnce) {
  Lingerer lingerer(loop_, {.max_lingering = 3});
  std::vector<Pair> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(pair());
    lingerer.add(held.back().ours, 0);
  }
  EXPECT_EQ(lingerer.lingering(), 3u);
  Pair extra = pair();
  lingerer.add(extra.ours, 0);
  EXPECT_EQ(lingerer.lingering(), 3u);
  EXPECT_FALSE(lingerer_end_open(extra.peer));  // closed in add(), before any loop turn
  for (const Pair& p : held) EXPECT_TRUE(lingerer_end_open(p.peer));
  // A freed place is taken by the next socket.
  ::shutdown(held[0].peer, SHUT_WR);
  drain(loop_);
  lingerer.sweep(1);
  EXPECT_EQ(lingerer.lingering(), 2u);
  Pair next = pair();
  lingerer.add(next.ours, 1);
  EXPECT_EQ(lingerer.lingering(), 3u);
  EXPECT_TRUE(lingerer_end_open(next.peer));
}

TEST_F(LingererTest, APeerThatKeepsSendingIsClosedAtTheByteBound) {
  constexpr size_t kBound = 4096;
  Lingerer lingerer(loop_, {.linger_bytes = kBound});
  Pair p = pair();
  lingerer.add(p.ours, 0);
  // One byte short of the bound: still lingering.
  std::string chunk(kBound - 1, 'x');
  ASSERT_EQ(::send(p.peer, chunk.data(), chunk.size(), MSG_NOSIGNAL), ssize_t(chunk.size()));
  drain(loop_);
  lingerer.sweep(1);
  EXPECT_EQ(lingerer.lingering(), 1u);
  // The probe is the bound's last byte: the Lingerer closes the socket when it reads it.
  ASSERT_TRUE(lingerer_end_open(p.peer));
  drain(loop_);
  EXPECT_FALSE(lingerer_end_open(p.peer));
  lingerer.sweep(1);
  EXPECT_EQ(lingerer.lingering(), 0u);
}

TEST_F(LingererTest, TheDefaultByteBoundStopsAFlood) {
  Lingerer lingerer(loop_);
  Pair p = pair();
  lingerer.add(p.ours, 0);
  std::string chunk(64 * 1024, 'x');
  size_t sent = 0;
  bool closed = false;
  while (!closed && sent < 8 * Lingerer::kLingerBytes) {
    ssize_t n = ::send(p.peer, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (errno == EPIPE) {
      closed = true;
    } else {
      ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
    }
    loop_.run_once(0);
  }
  EXPECT_TRUE(closed) << "still open after " << sent << " bytes";
  EXPECT_GE(sent, Lingerer::kLingerBytes);
}

TEST_F(LingererTest, APeerThatSendsNothingIsClosedAtTheDeadline) {
  Lingerer lingerer(loop_);
  Pair p = pair();
  constexpr int64_t kStart = 50'000;
  lingerer.add(p.ours, kStart);
  lingerer.sweep(kStart + Lingerer::kLingerMs - 1);
  EXPECT_EQ(lingerer.lingering(), 1u);
  EXPECT_TRUE(lingerer_end_open(p.peer));
  lingerer.sweep(kStart + Lingerer::kLingerMs);
  EXPECT_EQ(lingerer.lingering(), 0u);
  EXPECT_FALSE(lingerer_end_open(p.peer));
}

TEST_F(LingererTest, TheDeadlineComesFromTheLimits) {
  Lingerer lingerer(loop_, {.linger_ms = 10});
  Pair early = pair();
  Pair late = pair();
  lingerer.add(early.ours, 100);
  lingerer.add(late.ours, 105);
  lingerer.sweep(110);
  EXPECT_EQ(lingerer.lingering(), 1u);
  EXPECT_FALSE(lingerer_end_open(early.peer));
  EXPECT_TRUE(lingerer_end_open(late.peer));
  lingerer.sweep(115);
  EXPECT_EQ(lingerer.lingering(), 0u);
  EXPECT_FALSE(lingerer_end_open(late.peer));
}

// Over TCP on 127.0.0.1, the reason the Lingerer exists: a peer that is still sending when
// we close reads all we wrote before the close, then end of stream, not a reset.
TEST_F(LingererTest, TcpPeerStillSendingReadsOurLastBytesNotAReset) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  peers_.push_back(client);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  int server = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ::close(listener);
  ASSERT_GE(server, 0);

  // The client's data is unread on our side when we write our last packet and hand over.
  std::string before(1000, 'c');
  ASSERT_EQ(::send(client, before.data(), before.size(), MSG_NOSIGNAL), ssize_t(before.size()));
  const std::string last = "last packet";
  ASSERT_EQ(::send(server, last.data(), last.size(), MSG_NOSIGNAL), ssize_t(last.size()));
  Lingerer lingerer(loop_);
  lingerer.add(server, 0);
  // The client keeps sending, then reads.
  std::string after(1000, 'd');
  ASSERT_EQ(::send(client, after.data(), after.size(), MSG_NOSIGNAL), ssize_t(after.size()));
  drain(loop_);

  timeval tv{5, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  std::array<char, 256> buf;
  for (;;) {
    ssize_t n = ::recv(client, buf.data(), buf.size(), 0);
    ASSERT_GE(n, 0) << "recv: " << std::strerror(errno);  // ECONNRESET without lingering
    if (n == 0) break;
    got.append(buf.data(), static_cast<size_t>(n));
  }
  EXPECT_EQ(got, last);
  EXPECT_EQ(lingerer.lingering(), 1u);
  ::shutdown(client, SHUT_WR);
  drain(loop_);
  lingerer.sweep(1);
  EXPECT_EQ(lingerer.lingering(), 0u);
}

}  // namespace
}  // namespace harbor::runtime
