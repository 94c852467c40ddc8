// kill -9 after durability was reported: a child process stores ops, waits for durable_seq
// to cover them, keeps writing more, and SIGKILLs itself. Everything durable must be there.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_test_util.hpp"

namespace harbor::store::test {
namespace {

constexpr int kClients = 20;
constexpr int kMessages = 500;

[[noreturn]] void child_main(const StoreSettings& settings) {
  auto opened = Store::open(settings);
  if (!opened) _exit(2);
  auto& store = **opened;
  store.set_log([](int, std::string_view) {});
  if (!store.restore(0)) _exit(3);
  store.start();
  uint64_t last = 0;
  for (int c = 0; c < kClients; ++c) last = store.submit(session("c" + std::to_string(c)));
  // Fan-out: every message to every client, one body each.
  for (int m = 1; m <= kMessages; ++m) {
    std::vector<broker::PersistOp> ops;
    auto msg = make_message(m, "t/" + std::to_string(m), std::string(100, 'x'));
    for (int c = 0; c < kClients; ++c) ops.push_back(queue_add("c" + std::to_string(c), m, msg));
    last = store.submit_batch(std::move(ops));
  }
  // Acknowledge the first 100 for client 0.
  for (int m = 1; m <= 100; ++m) last = store.submit(broker::OpQueueRemove{"c0", uint64_t(m)});
  while (store.durable_seq() < last) usleep(500);
  // More work that may or may not make it: the crash lands in the middle of it.
  for (int m = kMessages + 1; m <= kMessages + 2000; ++m) {
    store.submit(queue_add("c1", m, make_message(m, "late", "y")));
  }
  kill(getpid(), SIGKILL);
  _exit(4);
}

TEST(StoreCrash, DurableOpsSurviveKill9) {
  TempDir dir;
  auto settings = settings_for(dir);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) child_main(settings);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  auto store = open_store(settings);
  ASSERT_TRUE(store);
  auto state = store->restore(0);
  ASSERT_TRUE(state) << state.error();
  ASSERT_EQ(state->sessions.size(), size_t(kClients));
  for (const auto& s : state->sessions) {
    const auto& q = s.queue;
    size_t first = s.session.client_id == "c0" ? 101 : 1;
    ASSERT_GE(q.size(), kMessages - first + 1) << s.session.client_id;
    for (size_t i = 0; i + first <= kMessages; ++i) {
      ASSERT_EQ(q[i].seq, first + i) << s.session.client_id;
      ASSERT_EQ(q[i].message->store_id, first + i);
      ASSERT_EQ(q[i].message->payload, std::string(100, 'x'));
    }
    // Late entries that made it are whole: their message is there too.
    for (const auto& e : q) ASSERT_TRUE(e.message);
  }
  // One body per message, shared across the twenty queues.
  EXPECT_EQ(state->sessions[0].queue[0].message->store_id, 101u);
  EXPECT_EQ(state->sessions[1].queue[100].message.get(), state->sessions[2].queue[100].message.get());
  EXPECT_GE(store->next_message_id(), uint64_t(kMessages + 1));
}

}  // namespace
}  // namespace harbor::store::test
