/* raw_connect: a connection load generator that is not HarborMQ's own client code.
 *
 * Opens N TCP connections to an MQTT broker, sends each a hand-built MQTT 3.1.1 CONNECT
 * (clean session, no will, no credentials), waits for its CONNACK and keeps the socket open
 * until the hold time ends; or, with --close-each, closes it right after the CONNACK. At
 * most --concurrency connections are being set up at any moment (1 = strictly one after
 * the other). Nothing of src/ is used: plain sockets, epoll and a 20-line CONNECT encoder,
 * so bench/compare.py can check HarborMQ's connection rate with a client other than
 * `harbormq bench conn` (issue 10).
 *
 *   raw_connect -p PORT [-h 127.0.0.1] [-c 10000] [--concurrency 256]
 *               [--id raw-%d | --empty-id] [--nodelay] [--close-each] [--send-early]
 *               [--hold SECONDS] [--ready-file FILE] [--json FILE]
 *
 * --id: client id template, %d = connection number (default "raw-<pid>-%d").
 * --empty-id: zero-length client id (the broker assigns one).
 * --id-file FILE: client ids, one a line, used in order (connection k gets line k, cycling);
 *   for experiments that choose which broker shard each id hashes to.
 * --nodelay: TCP_NODELAY on the client sockets (off by default, as in most simple clients).
 * --send-early: write CONNECT right after connect() succeeds instead of waiting for
 *   EPOLLOUT (saves one epoll round trip when loopback connects complete at once).
 * Output: one JSON object on stdout (and in --json FILE): connected, failed, elapsed_s,
 * conn_per_s (CONNACKs / time from the first connect() to the last CONNACK), and the
 * time from connect() to CONNACK in ms (p50, p99, max).
 *
 * Build: cc -O2 -o raw_connect bench/raw_connect.c  (bench/compare.py does this itself
 * when no raw_connect binary sits next to harbormq).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { IDLE, CONNECTING, AWAIT_CONNACK, DONE, FAILED };

struct conn {
  int fd;
  enum state st;
  uint64_t started_ns;
  unsigned char in[4];
  int in_len;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

/* MQTT 3.1.1 CONNECT: fixed header, "MQTT", level 4, flags 0x02 (clean session),
 * keepalive, client id. Returns the length written to out (at most 2 + 10 + 2 + id). */
static size_t encode_connect(unsigned char* out, const char* id, uint16_t keepalive) {
  size_t id_len = strlen(id);
  size_t remaining = 10 + 2 + id_len;
  size_t n = 0;
  out[n++] = 0x10;
  do { /* variable-length remaining length */
    unsigned char b = remaining % 128;
    remaining /= 128;
    if (remaining) b |= 0x80;
    out[n++] = b;
  } while (remaining);
  static const unsigned char var[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02};
  memcpy(out + n, var, sizeof var);
  n += sizeof var;
  out[n++] = (unsigned char)(keepalive >> 8);
  out[n++] = (unsigned char)(keepalive & 0xff);
  out[n++] = (unsigned char)(id_len >> 8);
  out[n++] = (unsigned char)(id_len & 0xff);
  memcpy(out + n, id, id_len);
  return n + id_len;
}

static void make_id(char* out, size_t size, int k, int empty, const char* tmpl, char** list, int list_len) {
  if (empty)
    out[0] = 0;
  else if (list_len > 0)
    snprintf(out, size, "%s", list[k % list_len]);
  else
    snprintf(out, size, tmpl, k);
}

static void usage(void) {
  fprintf(stderr,
          "usage: raw_connect -p PORT [-h HOST] [-c N] [--concurrency K] [--id TEMPLATE | --empty-id | --id-file F]\n"
          "                   [--nodelay] [--close-each] [--send-early] [--hold S] [--ready-file F] [--json F]\n");
  exit(1);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 0, count = 10000, concurrency = 256, nodelay = 0, close_each = 0, send_early = 0, empty_id = 0;
  double hold_s = 0;
  const char* ready_file = NULL;
  const char* json_file = NULL;
  char** id_list = NULL;
  int id_count = 0;
  char id_template[200];
  snprintf(id_template, sizeof id_template, "raw-%d-%%d", (int)getpid());
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) usage(); ++i; } while (0)
    if (!strcmp(a, "-h")) { NEED_VALUE(); host = v; }
    else if (!strcmp(a, "-p")) { NEED_VALUE(); port = atoi(v); }
    else if (!strcmp(a, "-c")) { NEED_VALUE(); count = atoi(v); }
    else if (!strcmp(a, "--concurrency")) { NEED_VALUE(); concurrency = atoi(v); }
    else if (!strcmp(a, "--id")) { NEED_VALUE(); snprintf(id_template, sizeof id_template, "%s", v); }
    else if (!strcmp(a, "--empty-id")) empty_id = 1;
    else if (!strcmp(a, "--id-file")) {
      NEED_VALUE();
      FILE* f = fopen(v, "r");
      if (!f) { perror(v); return 1; }
      char line[256];
      while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        id_list = realloc(id_list, sizeof *id_list * (size_t)(id_count + 1));
        id_list[id_count++] = strdup(line);
      }
      fclose(f);
      if (id_count == 0) usage();
    }
    else if (!strcmp(a, "--nodelay")) nodelay = 1;
    else if (!strcmp(a, "--close-each")) close_each = 1;
    else if (!strcmp(a, "--send-early")) send_early = 1;
    else if (!strcmp(a, "--hold")) { NEED_VALUE(); hold_s = atof(v); }
    else if (!strcmp(a, "--ready-file")) { NEED_VALUE(); ready_file = v; }
    else if (!strcmp(a, "--json")) { NEED_VALUE(); json_file = v; }
    else usage();
#undef NEED_VALUE
  }
  if (port <= 0 || count < 1 || concurrency < 1) usage();

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count + 64) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)count + 64 ? rl.rlim_max : (rlim_t)count + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "raw_connect: bad IPv4 address %s\n", host);
    return 1;
  }

  struct conn* conns = calloc((size_t)count, sizeof *conns);
  uint64_t* latency = calloc((size_t)count, sizeof *latency);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!conns || !latency || ep < 0) return 1;
  int next = 0, pending = 0, connected = 0, failed = 0;
  uint64_t t0 = now_ns(), last_connack = t0;
  unsigned char packet[300];
  char id[256];

  while (connected + failed < count) {
    while (next < count && pending < concurrency) {
      struct conn* c = &conns[next];
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      c->started_ns = now_ns();
      if (c->fd < 0) { c->st = FAILED; ++failed; ++next; continue; }
      if (nodelay) { int one = 1; setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
      int r = connect(c->fd, (struct sockaddr*)&addr, sizeof addr);
      if (r < 0 && errno != EINPROGRESS) { close(c->fd); c->st = FAILED; ++failed; ++next; continue; }
      c->st = CONNECTING;
      struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)next};
      if (r == 0 && send_early) {
        make_id(id, sizeof id, next, empty_id, id_template, id_list, id_count);
        size_t len = encode_connect(packet, id, 60);
        if (send(c->fd, packet, len, MSG_NOSIGNAL) == (ssize_t)len) { c->st = AWAIT_CONNACK; ev.events = EPOLLIN; }
      }
      epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      ++pending;
      ++next;
    }
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; ++i) {
      struct conn* c = &conns[evs[i].data.u32];
      int k = (int)evs[i].data.u32;
      if (c->st == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          make_id(id, sizeof id, k, empty_id, id_template, id_list, id_count);
          size_t plen = encode_connect(packet, id, 60);
          if (send(c->fd, packet, plen, MSG_NOSIGNAL) == (ssize_t)plen) {
            c->st = AWAIT_CONNACK;
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            continue;
          }
        }
      } else if (c->st == AWAIT_CONNACK) {
        ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - (size_t)c->in_len, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r > 0) {
          c->in_len += (int)r;
          if (c->in_len < 4) continue;
          if (c->in[0] == 0x20 && c->in[1] == 0x02 && c->in[3] == 0x00) {
            uint64_t t = now_ns();
            latency[connected++] = t - c->started_ns;
            last_connack = t;
            c->st = DONE;
            --pending;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            if (close_each) { close(c->fd); c->fd = -1; }
            continue;
          }
        }
      } else {
        continue;
      }
      /* connect error, send failure, EOF or a refusing CONNACK */
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      c->st = FAILED;
      ++failed;
      --pending;
    }
    if (n == 0 && now_ns() - t0 > 120ull * 1000000000ull) break; /* a broker that stopped answering */
  }
  double elapsed = (double)(last_connack - t0) / 1e9;
  qsort(latency, (size_t)connected, sizeof *latency, cmp_u64);
  double p50 = connected ? latency[connected / 2] / 1e6 : 0;
  double p99 = connected ? latency[(size_t)(connected * 0.99)] / 1e6 : 0;
  double mx = connected ? latency[connected - 1] / 1e6 : 0;
  char json[512];
  snprintf(json, sizeof json,
           "{\"connected\": %d, \"failed\": %d, \"elapsed_s\": %.6f, \"conn_per_s\": %.1f, "
           "\"connect_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, \"concurrency\": %d, "
           "\"nodelay\": %d, \"close_each\": %d, \"empty_id\": %d}\n",
           connected, failed, elapsed, elapsed > 0 ? connected / elapsed : 0.0, p50, p99, mx, concurrency, nodelay,
           close_each, empty_id);
  if (ready_file) {
    FILE* f = fopen(ready_file, "w");
    if (f) { fprintf(f, "%d\n", connected); fclose(f); }
  }
  if (hold_s > 0) {
    struct timespec ts = {(time_t)hold_s, (long)((hold_s - (double)(time_t)hold_s) * 1e9)};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < count; ++i)
    if (conns[i].fd > 0) close(conns[i].fd);
  fputs(json, stdout);
  fflush(stdout);
  close(ep);
  free(conns);
  free(latency);
  for (int i = 0; i < id_count; ++i) free(id_list[i]);
  free(id_list);
  if (json_file) {
    FILE* f = fopen(json_file, "w");
    if (!f) return 7;
    fputs(json, f);
    fclose(f);
  }
  return connected > 0 ? 0 : 2;
}
