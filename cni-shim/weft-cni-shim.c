/*
 * weft-cni-shim: the `weft` CNI plugin's fast path (README.md "CNI plugin").
 *
 * A runtime execs this small program per CNI call. It reads stdin (bounded) and passes its whole
 * environment plus stdin to the running weftd over a unix socket; weftd runs the plugin logic in-process
 * (src/cni via src/daemon/cni-server.ts) and answers with the plugin's stdout, stderr and exit code, which
 * this program relays verbatim. So a call costs one small exec plus the delegates weftd runs, not a Node
 * start.
 *
 * When weftd cannot serve the call (socket absent or refused, weftd serves another network namespace,
 * a connection lost before a complete answer) it execs the full plugin installed next to it
 * (`weft-full`, the same src/cni logic as a standalone program) with stdin replayed from a memfd and
 * WEFT_CNI_SHIM_FALLBACK=<reason> in the environment: DEL, CHECK, GC, STATUS and VERSION then work without
 * weftd, and ADD answers the spec's code 11 "try again later" (see src/cni/main.ts).
 *
 * Socket: the netconf's top-level "daemonSocket" (absolute path) or WEFT_CNI_DEFAULT_SOCKET.
 *
 * Wire format (little endian; src/daemon/cni-wire.ts is the other side):
 *   request:  "WCNI" u32 version(1) u32 envLen u32 stdinLen | env (entries "K=V" each ended by NUL) | stdin
 *   reply:    "WCNR" u32 status u32 exitCode u32 stdoutLen u32 stderrLen | stdout | stderr
 *             status 0 = ran (relay it), anything else = weftd cannot serve it (stderr says why): fall back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef WEFT_CNI_DEFAULT_SOCKET
#define WEFT_CNI_DEFAULT_SOCKET "/run/weft/cni.sock"
#endif
/* The full plugin: an absolute path, or a file name looked up next to this executable. */
#ifndef WEFT_CNI_FALLBACK
#define WEFT_CNI_FALLBACK "weft-full"
#endif

#define MAX_STDIN (4u * 1024u * 1024u) /* src/cni/netconf.ts MAX_STDIN_BYTES */
#define MAX_ENV (1u * 1024u * 1024u)
#define MAX_REPLY_PART (8u * 1024u * 1024u)
/* The longest call weftd serves: ADD waits up to 300 s for subnet.env, then delegates (60 s each). */
#define REPLY_TIMEOUT_MS (10 * 60 * 1000)

extern char **environ;

struct buf {
  char *p;
  size_t len, cap;
};

static int buf_add(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* All of stdin, at most MAX_STDIN + 1 bytes (more is answered "too large" by the plugin logic). */
static int read_stdin(struct buf *in) {
  char chunk[65536];
  for (;;) {
    size_t room = MAX_STDIN + 1 - in->len;
    if (room == 0) return 0;
    ssize_t r = read(0, chunk, room < sizeof chunk ? room : sizeof chunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        poll(&pfd, 1, -1);
        continue;
      }
      if (errno == EBADF) return 0; /* no stdin at all: empty */
      return -1;
    }
    if (r == 0) return 0;
    if (buf_add(in, chunk, (size_t)r) < 0) return -1;
  }
}

/* --- a minimal JSON walker: only to find the top-level "daemonSocket" string ------------------ */

struct js {
  const char *p, *end;
  int depth;
};

static void js_ws(struct js *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Skips a string at j->p (which is '"'); sets *plain when it has no escapes. */
static int js_string(struct js *j, const char **s, size_t *n, int *plain) {
  if (j->p >= j->end || *j->p != '"') return -1;
  const char *start = ++j->p;
  *plain = 1;
  while (j->p < j->end && *j->p != '"') {
    if ((unsigned char)*j->p < 0x20) return -1;
    if (*j->p == '\\') {
      *plain = 0;
      j->p++;
    }
    j->p++;
  }
  if (j->p >= j->end) return -1;
  *s = start;
  *n = (size_t)(j->p - start);
  j->p++;
  return 0;
}

static int js_value(struct js *j) {
  js_ws(j);
  if (j->p >= j->end) return -1;
  char c = *j->p;
  if (c == '"') {
    const char *s;
    size_t n;
    int plain;
    return js_string(j, &s, &n, &plain);
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    if (++j->depth > 64) return -1;
    j->p++;
    js_ws(j);
    if (j->p < j->end && *j->p == close) {
      j->p++;
      j->depth--;
      return 0;
    }
    for (;;) {
      if (c == '{') {
        const char *s;
        size_t n;
        int plain;
        js_ws(j);
        if (js_string(j, &s, &n, &plain) < 0) return -1;
        js_ws(j);
        if (j->p >= j->end || *j->p != ':') return -1;
        j->p++;
      }
      if (js_value(j) < 0) return -1;
      js_ws(j);
      if (j->p >= j->end) return -1;
      if (*j->p == ',') {
        j->p++;
        continue;
      }
      if (*j->p != close) return -1;
      j->p++;
      j->depth--;
      return 0;
    }
  }
  /* number, true, false, null */
  const char *start = j->p;
  while (j->p < j->end && strchr("0123456789+-.eEtruefalsn", *j->p)) j->p++;
  return j->p > start ? 0 : -1;
}

/*
 * The top-level "daemonSocket" of the netconf into out: 1 found, 0 absent, -1 unusable (not JSON, not a
 * plain string, too long); the full plugin then decides (it validates the key itself, code 7).
 */
static int netconf_socket(const struct buf *in, char *out, size_t outsz) {
  struct js j = {.p = in->p, .end = in->p + in->len, .depth = 0};
  int found = 0;
  js_ws(&j);
  if (j.p >= j.end || *j.p != '{') return -1;
  j.p++;
  js_ws(&j);
  if (j.p < j.end && *j.p == '}') return 0;
  for (;;) {
    const char *k;
    size_t kn;
    int plain;
    js_ws(&j);
    if (js_string(&j, &k, &kn, &plain) < 0) return -1;
    js_ws(&j);
    if (j.p >= j.end || *j.p != ':') return -1;
    j.p++;
    js_ws(&j);
    if (kn == 12 && plain && memcmp(k, "daemonSocket", 12) == 0) {
      const char *v;
      size_t vn;
      int vplain;
      if (js_string(&j, &v, &vn, &vplain) < 0) return -1;
      if (!vplain || vn == 0 || vn >= outsz || v[0] != '/' || memchr(v, 0, vn)) return -1;
      memcpy(out, v, vn);
      out[vn] = 0;
      found = 1;
    } else if (js_value(&j) < 0) {
      return -1;
    }
    js_ws(&j);
    if (j.p >= j.end) return -1;
    if (*j.p == ',') {
      j.p++;
      continue;
    }
    return *j.p == '}' ? found : -1;
  }
}

/* --- fallback: exec the full plugin with stdin replayed ------------------------------------------ */

static void fallback(const struct buf *in, const char *reason) {
  char path[PATH_MAX];
  if (WEFT_CNI_FALLBACK[0] == '/') {
    snprintf(path, sizeof path, "%s", WEFT_CNI_FALLBACK);
  } else {
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
      printf("{\"code\":5,\"msg\":\"weft: cannot locate the full plugin: /proc/self/exe unreadable\"}\n");
      exit(1);
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    snprintf(path, sizeof path, "%s/%s", self, WEFT_CNI_FALLBACK);
  }
  int fd = memfd_create("weft-cni-stdin", MFD_CLOEXEC);
  if (fd < 0 || (in->len > 0 && write_all(fd, in->p, in->len) < 0) || lseek(fd, 0, SEEK_SET) < 0 ||
      dup2(fd, 0) < 0) {
    printf("{\"code\":5,\"msg\":\"weft: cannot replay stdin to the full plugin: %s\"}\n", strerror(errno));
    exit(1);
  }
  close(fd);
  setenv("WEFT_CNI_SHIM_FALLBACK", reason, 1);
  char *argv[] = {path, NULL};
  execv(path, argv);
  printf("{\"code\":5,\"msg\":\"weft: weftd is unavailable (%s) and the full plugin %s cannot run: %s\"}\n",
         reason, path, strerror(errno));
  exit(1);
}

/* --- the fast path ---------------------------------------------------------------------------------- */

static int read_full(int fd, void *data, size_t n, int timeout_ms) {
  char *p = data;
  while (n > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      errno = pr == 0 ? ETIMEDOUT : errno;
      return -1;
    }
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -1;
    }
    if (r == 0) {
      errno = ECONNRESET;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  struct buf in = {0};
  const char *cmd = getenv("CNI_COMMAND");
  /* Like src/cni/main.ts: VERSION from a terminal needs no stdin. */
  if (!(cmd && strcmp(cmd, "VERSION") == 0 && isatty(0)) && read_stdin(&in) < 0) {
    printf("{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"cannot read stdin: %s\"}\n", strerror(errno));
    return 1;
  }

  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int found = netconf_socket(&in, sa.sun_path, sizeof sa.sun_path);
  if (found < 0) fallback(&in, "the netconf could not be read by the shim");
  if (found == 0) snprintf(sa.sun_path, sizeof sa.sun_path, "%s", WEFT_CNI_DEFAULT_SOCKET);

  char reason[512];
  struct buf req = {0};
  size_t envlen = 0;
  for (char **e = environ; *e; e++) envlen += strlen(*e) + 1;
  if (envlen > MAX_ENV) fallback(&in, "the environment is too large for weftd");
  unsigned char hdr[16];
  memcpy(hdr, "WCNI", 4);
  put_u32(hdr + 4, 1);
  put_u32(hdr + 8, (uint32_t)envlen);
  put_u32(hdr + 12, (uint32_t)in.len);
  if (buf_add(&req, hdr, sizeof hdr) < 0) fallback(&in, "out of memory");
  for (char **e = environ; *e; e++)
    if (buf_add(&req, *e, strlen(*e) + 1) < 0) fallback(&in, "out of memory");
  if (in.len > 0 && buf_add(&req, in.p, in.len) < 0) fallback(&in, "out of memory");

  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    snprintf(reason, sizeof reason, "connect %s: %s", sa.sun_path, strerror(errno));
    fallback(&in, reason);
  }
  if (write_all(s, req.p, req.len) < 0) {
    snprintf(reason, sizeof reason, "sending to %s: %s", sa.sun_path, strerror(errno));
    fallback(&in, reason);
  }
  shutdown(s, SHUT_WR);

  unsigned char rh[20];
  if (read_full(s, rh, sizeof rh, REPLY_TIMEOUT_MS) < 0) {
    snprintf(reason, sizeof reason, "no answer from weftd on %s: %s", sa.sun_path, strerror(errno));
    fallback(&in, reason);
  }
  if (memcmp(rh, "WCNR", 4) != 0) {
    snprintf(reason, sizeof reason, "%s answered something that is not weftd's reply", sa.sun_path);
    fallback(&in, reason);
  }
  uint32_t status = get_u32(rh + 4), code = get_u32(rh + 8);
  uint32_t outlen = get_u32(rh + 12), errlen = get_u32(rh + 16);
  if (outlen > MAX_REPLY_PART || errlen > MAX_REPLY_PART) fallback(&in, "weftd's reply is too large");
  char *out = malloc((size_t)outlen + errlen + 1);
  if (!out) fallback(&in, "out of memory");
  if (read_full(s, out, (size_t)outlen + errlen, REPLY_TIMEOUT_MS) < 0) {
    snprintf(reason, sizeof reason, "weftd's reply on %s was cut short: %s", sa.sun_path, strerror(errno));
    fallback(&in, reason);
  }
  close(s);
  if (status != 0) {
    size_t n = errlen < sizeof reason - 1 ? errlen : sizeof reason - 1;
    memcpy(reason, out + outlen, n);
    reason[n] = 0;
    fallback(&in, reason);
  }
  if (write_all(1, out, outlen) < 0 || write_all(2, out + outlen, errlen) < 0) {
    /* stdout gone: the runtime has stopped listening; the exit code still tells */
  }
  return (int)(code & 0xff);
}
