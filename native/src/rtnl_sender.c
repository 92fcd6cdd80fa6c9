// The native rtnetlink sender (README.md, "Dependency decisions": netlink). rtnetlink does a request's
// work inside the sender's sendmsg(2), so a JavaScript sender pays the kernel's time on the same thread
// that plans and encodes. Here a dedicated thread owns its own NETLINK_ROUTE socket (opened by the
// caller's thread, so it lives in the caller's network namespace) and does the sending: JS queues
// encoded requests synchronously (rtnl_sender_submit copies them) and goes on planning while the
// kernel works on the other CPU.
//
// - Order: requests are sent in submission order over the one socket, so the kernel applies them in
//   that order (neighbour → FDB → route of a peer stay in order).
// - Batching: up to `per_send` requests (and ≤ 32 KiB) per datagram, across submissions; only the
//   datagram's last request carries NLM_F_ACK (the kernel answers every failed request anyway), so its
//   ACK means "all of the datagram is done". The sender assigns the sequence numbers.
// - Answers: read by this thread right after each sendmsg (the kernel has answered by then), with a
//   deadline: what is unanswered at `timeout_ms` gets RTNL_RES_TIMEOUT. A receive/send failure (e.g.
//   ENOBUFS) loses the socket: every unanswered and queued request gets RTNL_RES_SOCKET and later
//   submissions fail; the owner opens a new sender.
// - Results: per submission, once all of its requests are answered, through `done` (on this thread).
#define _GNU_SOURCE
#include "rtnl_sender.h"

#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#define MAX_PER_SEND 256
#define MAX_DGRAM 32768
#define RCV_BUF (1 << 20)
#define SPIN_US 200

// One step of the short wait for more work: yields the CPU, so that a thread that shares it (e.g.
// the submitter, on a busy machine) runs instead of this one burning it.
static inline void cpu_relax(void) { sched_yield(); }

struct sub {
  struct sub *next;
  uint64_t id;
  uint8_t *buf;
  uint32_t *offs;  // start of each request in buf
  uint32_t count;
  uint32_t sent;      // requests taken into datagrams
  uint32_t answered;  // requests with a result
  int32_t *results;   // one per request
  int failed;         // some result is not 0
};

struct rtnl_sender {
  int fd;
  int wake_fd;
  unsigned per_send;
  unsigned timeout_ms;
  rtnl_done_fn done;
  void *ctx;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct sub *head, *tail;  // queued and in-flight submissions, oldest first
  int stop;
  int lost;  // errno of the failure, 0 while healthy
  uint64_t queued;  // requests submitted (under mu)
  uint64_t taken;   // requests taken into datagrams (sender thread; read under mu)
  uint32_t seq;
  uint8_t dgram[MAX_DGRAM];
  uint8_t rbuf[65536];
  struct sub *ds_sub[MAX_PER_SEND];
  uint32_t ds_idx[MAX_PER_SEND];
  int32_t ds_res[MAX_PER_SEND];
  uint8_t ds_done[MAX_PER_SEND];
};

static void sub_free(struct sub *u) {
  free(u->buf);
  free(u->offs);
  free(u->results);
  free(u);
}


// Reports and frees the completed submissions at the head of the queue.
static void reap(struct rtnl_sender *s) {
  for (;;) {
    pthread_mutex_lock(&s->mu);
    struct sub *u = s->head;
    if (!u || u->answered < u->count) {
      pthread_mutex_unlock(&s->mu);
      return;
    }
    s->head = u->next;
    if (!s->head) s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    s->done(s->ctx, u->id, u->count, u->failed ? u->results : NULL);
    sub_free(u);
  }
}

// Fails every request not answered yet (queued or in flight) with `res`.
static void fail_all(struct rtnl_sender *s, int32_t res) {
  pthread_mutex_lock(&s->mu);
  struct sub *u = s->head;
  s->head = s->tail = NULL;
  pthread_mutex_unlock(&s->mu);
  while (u) {
    struct sub *next = u->next;
    // Requests are answered in order: those from `answered` on have no result yet.
    for (uint32_t i = u->answered; i < u->count; i++) u->results[i] = res;
    u->failed = 1;
    s->done(s->ctx, u->id, u->count, u->results);
    sub_free(u);
    u = next;
  }
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Builds the next datagram from the queue; returns its request count (0: nothing queued). The lock is
// held only to read the queue's ends: submissions between `head` and the `tail` seen then are stable
// (the submitter only appends after that tail), so the copying runs without it.
static unsigned build(struct rtnl_sender *s, size_t *len) {
  unsigned n = 0;
  size_t off = 0;
  uint32_t last = 0;
  pthread_mutex_lock(&s->mu);
  struct sub *u = s->head, *end = s->tail;
  pthread_mutex_unlock(&s->mu);
  for (; u && n < s->per_send; u = u == end ? NULL : u->next) {
    while (u->sent < u->count && n < s->per_send) {
      struct nlmsghdr *h = (struct nlmsghdr *)(u->buf + u->offs[u->sent]);
      size_t mlen = NLMSG_ALIGN(h->nlmsg_len);
      if (off + mlen > MAX_DGRAM && n > 0) goto out;
      memcpy(s->dgram + off, h, mlen);
      struct nlmsghdr *d = (struct nlmsghdr *)(s->dgram + off);
      d->nlmsg_seq = s->seq + n;
      d->nlmsg_pid = 0;
      d->nlmsg_flags &= ~NLM_F_ACK;
      last = (uint32_t)off;
      s->ds_sub[n] = u;
      s->ds_idx[n] = u->sent++;
      s->ds_res[n] = 0;
      s->ds_done[n] = 0;
      off += mlen;
      n++;
    }
  }
out:
  if (n > 0) ((struct nlmsghdr *)(s->dgram + last))->nlmsg_flags |= NLM_F_ACK;
  *len = off;
  return n;
}

// Reads answers until the datagram's last request is acknowledged; returns 0, or the errno that lost
// the socket. Unanswered requests at the deadline get RTNL_RES_TIMEOUT.
static int await_answers(struct rtnl_sender *s, unsigned n) {
  uint32_t base = s->seq, lastseq = s->seq + n - 1;
  int64_t deadline = now_ms() + s->timeout_ms;
  for (;;) {
    ssize_t r = recv(s->fd, s->rbuf, sizeof s->rbuf, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return errno;
      int64_t left = deadline - now_ms();
      if (left <= 0) {
        for (unsigned k = 0; k < n; k++)
          if (!s->ds_done[k]) s->ds_res[k] = RTNL_RES_TIMEOUT | ETIMEDOUT;
        return 0;
      }
      struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
      if (poll(p, 2, (int)left) < 0 && errno != EINTR) return errno;
      if (p[1].revents) return ESHUTDOWN;
      continue;
    }
    size_t left = (size_t)r;
    for (struct nlmsghdr *h = (struct nlmsghdr *)s->rbuf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      uint32_t seq = h->nlmsg_seq;
      if (seq - base > lastseq - base) continue;  // a late answer to an earlier, timed-out datagram
      int32_t err = 0;
      if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int32_t))) memcpy(&err, NLMSG_DATA(h), sizeof err);
      unsigned k = seq - base;
      if (err != 0 && !s->ds_done[k]) s->ds_res[k] = -err;
      s->ds_done[k] = 1;
      if (seq == lastseq) return 0;
    }
  }
}

static void *run(void *arg) {
  struct rtnl_sender *s = arg;
  for (;;) {
    // Caught up: spin a little before sleeping, so that a submitter streaming chunks (the reconcile)
    // does not pay a futex wake-up per chunk, nor get preempted by this thread's wake-up.
    for (int64_t until = now_us() + SPIN_US;
         __atomic_load_n(&s->queued, __ATOMIC_ACQUIRE) == s->taken && now_us() < until;)
      cpu_relax();
    pthread_mutex_lock(&s->mu);
    while (!s->stop && s->queued == s->taken) pthread_cond_wait(&s->cv, &s->mu);
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    if (stop) break;
    size_t len;
    unsigned n = build(s, &len);
    if (n == 0) continue;
    pthread_mutex_lock(&s->mu);
    s->taken += n;
    pthread_mutex_unlock(&s->mu);
    int lost = 0;
    for (;;) {
      ssize_t w = send(s->fd, s->dgram, len, 0);
      if (w >= 0) break;
      if (errno == EINTR) continue;
      lost = errno;
      break;
    }
    if (!lost) lost = await_answers(s, n);
    s->seq += n;
    if (s->seq > 0x7fff0000u) s->seq = 1;
    for (unsigned k = 0; k < n; k++) {
      struct sub *u = s->ds_sub[k];
      int32_t res = lost && !s->ds_done[k] ? RTNL_RES_SOCKET | lost : s->ds_res[k];
      if (res != 0) {
        u->results[s->ds_idx[k]] = res;
        u->failed = 1;
      }
      u->answered++;
    }
    if (lost) {
      pthread_mutex_lock(&s->mu);
      s->lost = lost;
      pthread_mutex_unlock(&s->mu);
      reap(s);
      fail_all(s, RTNL_RES_SOCKET | lost);
      break;
    }
    reap(s);
  }
  return NULL;
}

int rtnl_sender_open(struct rtnl_sender **out, unsigned per_send, unsigned timeout_ms,
                     rtnl_done_fn done, void *ctx) {
  if (per_send < 1 || per_send > MAX_PER_SEND || timeout_ms < 1 || !done) return -EINVAL;
  struct rtnl_sender *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->per_send = per_send;
  s->timeout_ms = timeout_ms;
  s->done = done;
  s->ctx = ctx;
  s->seq = 1;
  s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s->fd < 0) {
    int e = errno;
    free(s);
    return -e;
  }
  int one = 1, rcv = RCV_BUF;
  setsockopt(s->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);  // errors without the request
  if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  int e = 0;
  if (bind(s->fd, (struct sockaddr *)&sa, sizeof sa) != 0) e = errno;
  if (!e && (s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) e = errno;
  if (e) {
    close(s->fd);
    free(s);
    return -e;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if ((e = pthread_create(&s->thread, NULL, run, s)) != 0) {
    close(s->fd);
    close(s->wake_fd);
    free(s);
    return -e;
  }
  *out = s;
  return 0;
}

int rtnl_sender_submit(struct rtnl_sender *s, uint64_t id, const void *buf, size_t len) {
  if (len == 0 || len > 0x7fffffff || len % 4 != 0) return -EINVAL;
  // Count and check the framing first (a malformed request must not reach the kernel).
  uint32_t count = 0;
  for (size_t off = 0; off < len;) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)((const uint8_t *)buf + off);
    if (len - off < NLMSG_HDRLEN || h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len - off ||
        NLMSG_ALIGN(h->nlmsg_len) > MAX_DGRAM)
      return -EINVAL;
    off += NLMSG_ALIGN(h->nlmsg_len);
    count++;
  }
  struct sub *u = calloc(1, sizeof *u);
  if (!u) return -ENOMEM;
  u->buf = malloc(len);
  u->offs = malloc(count * sizeof(uint32_t));
  u->results = calloc(count, sizeof(int32_t));
  if (!u->buf || !u->offs || !u->results) {
    sub_free(u);
    return -ENOMEM;
  }
  memcpy(u->buf, buf, len);
  uint32_t k = 0;
  for (size_t off = 0; off < len; k++) {
    u->offs[k] = (uint32_t)off;
    off += NLMSG_ALIGN(((const struct nlmsghdr *)(u->buf + off))->nlmsg_len);
  }
  u->id = id;
  u->count = count;
  pthread_mutex_lock(&s->mu);
  if (s->lost || s->stop) {
    pthread_mutex_unlock(&s->mu);
    sub_free(u);
    return -EPIPE;
  }
  if (s->tail) s->tail->next = u;
  else s->head = u;
  s->tail = u;
  __atomic_add_fetch(&s->queued, count, __ATOMIC_RELEASE);
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return (int)count;
}

int rtnl_sender_lost(struct rtnl_sender *s) {
  pthread_mutex_lock(&s->mu);
  int lost = s->lost != 0 || s->stop;
  pthread_mutex_unlock(&s->mu);
  return lost;
}

void rtnl_sender_close(struct rtnl_sender *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  uint64_t one = 1;
  ssize_t w = write(s->wake_fd, &one, sizeof one);
  (void)w;
  pthread_join(s->thread, NULL);
  fail_all(s, RTNL_RES_SOCKET | ESHUTDOWN);
  close(s->fd);
  close(s->wake_fd);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}
