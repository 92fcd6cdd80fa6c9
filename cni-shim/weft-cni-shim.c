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
 * weftd, and ADD answers the spec's code 11 "try again later" (see src/cni/main.ts). An environment
 * larger than weftd accepts is no reason to retry: ADD answers code 4 here, the rest fall back.
 *
 * Socket: the netconf's top-level "daemonSocket" (absolute path) or WEFT_CNI_DEFAULT_SOCKET.
 *
 * weftd decides what to run, this program runs the delegates (bridge, host-local via bridge): a fork and
 * exec from this small process is cheaper than from weftd's large one, and the delegates then run in the
 * caller's own namespaces, exactly as if the runtime had exec'd them. Their stderr is this program's.
 * Only a plugin in a CNI_PATH directory is run, and only for a server whose SO_PEERCRED uid is 0. For
 * ADD and DEL with the default `bridge` delegate the plugin is started once that check passed, just
 * before the request goes out, and waits on its stdin until weftd asks for it (start_head: its start-up
 * overlaps weftd's work); it is killed unused, before reading any config, when weftd asks for something
 * else or answers first.
 *
 * Wire format (little endian; src/daemon/cni-wire.ts is the other side):
 *   request:  "WCNI" u32 version(1) u32 envLen u32 stdinLen | env (entries "K=V" each ended by NUL) | stdin
 *   then weftd sends any number of
 *   exec:     "WCNX" u32 timeoutMs u32 pathLen u32 envLen u32 stdinLen | path | env | stdin
 *     each answered with
 *   result:   "WCNE" u32 kind(0 exited, 1 killed by signal, 2 exec failed) u32 value(code/signal/errno)
 *             u32 stdoutLen u32 flags(1 = stdout overflowed) | stdout (at most 1 MiB)
 *   and finally
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
#include <sys/wait.h>
#include <time.h>
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
#define MAX_DELEGATE_OUT (1u << 20) /* src/cni/invoke.ts MAX_OUTPUT */
#define MAX_EXEC_STDIN (8u * 1024u * 1024u)
/* The longest call weftd serves: ADD waits up to 300 s for subnet.env, then delegates (60 s each). */
#define REPLY_TIMEOUT_MS (10 * 60 * 1000)

extern char **environ;

struct buf {
  char *p;
  size_t len, cap;
};

/* A started delegate: its pid and our ends of its stdin, stdout and exec-error pipes. */
struct child {
  pid_t pid;
  int in_fd, out_fd, err_fd;
};

/* The head start (start_head), if one is running: pid -1 otherwise. */
static struct child head = {.pid = -1};

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
      if (++j->p >= j->end || !strchr("\"\\/bfnrtu", *j->p)) return -1;
      if (*j->p == 'u') {
        for (int i = 0; i < 4; i++)
          if (++j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p)) return -1;
      }
    }
    j->p++;
  }
  if (j->p >= j->end) return -1;
  *s = start;
  *n = (size_t)(j->p - start);
  j->p++;
  return 0;
}

/* Enters the object or array at j->p (`open` is '{' or '['): 1 it has members, 0 it is empty (and
 * passed), -1 it is not one. */
static int js_open(struct js *j, char open) {
  js_ws(j);
  if (j->p >= j->end || *j->p != open) return -1;
  j->p++;
  js_ws(j);
  if (j->p < j->end && *j->p == (open == '{' ? '}' : ']')) {
    j->p++;
    return 0;
  }
  return 1;
}

/* Reads an object member's key and its ':'; j->p is then at the value. */
static int js_key(struct js *j, const char **k, size_t *kn, int *plain) {
  js_ws(j);
  if (js_string(j, k, kn, plain) < 0) return -1;
  js_ws(j);
  if (j->p >= j->end || *j->p != ':') return -1;
  j->p++;
  js_ws(j);
  return 0;
}

/* After a member's value: 1 another member follows (',' passed), 0 the `close` bracket (passed), -1 bad. */
static int js_next(struct js *j, char close) {
  js_ws(j);
  if (j->p >= j->end) return -1;
  if (*j->p == ',') {
    j->p++;
    return 1;
  }
  if (*j->p != close) return -1;
  j->p++;
  return 0;
}

/* One or more digits (a number's part). */
static int js_digits(struct js *j) {
  const char *start = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  return j->p > start ? 0 : -1;
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
    if (++j->depth > 64) return -1;
    int r = js_open(j, c);
    while (r == 1) {
      const char *s;
      size_t n;
      int plain;
      if (c == '{' && js_key(j, &s, &n, &plain) < 0) return -1;
      if (js_value(j) < 0) return -1;
      r = js_next(j, c == '{' ? '}' : ']');
    }
    if (r == 0) j->depth--;
    return r;
  }
  /* true, false, null: exactly; a number: JSON's grammar */
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
      j->p += n;
      return 0;
    }
  }
  if (j->p < j->end && *j->p == '-') j->p++;
  if (js_digits(j) < 0) return -1;
  if (j->p < j->end && *j->p == '.') {
    j->p++;
    if (js_digits(j) < 0) return -1;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
    if (js_digits(j) < 0) return -1;
  }
  return 0;
}

/*
 * The top-level "daemonSocket" of the netconf into out: 1 found, 0 absent, -1 stdin is not a JSON object
 * this walker reads (weftd then answers the error, as the full plugin would), -2 "daemonSocket" is not a
 * plain absolute path that fits (the full plugin then decides; it validates the key itself, code 7).
 */
static int netconf_socket(const struct buf *in, char *out, size_t outsz) {
  struct js j = {.p = in->p, .end = in->p + in->len, .depth = 0};
  int found = 0;
  int r = js_open(&j, '{');
  while (r == 1) {
    const char *k;
    size_t kn;
    int plain;
    if (js_key(&j, &k, &kn, &plain) < 0) return -1;
    if (kn == 12 && plain && memcmp(k, "daemonSocket", 12) == 0) {
      const char *v;
      size_t vn;
      int vplain;
      if (js_string(&j, &v, &vn, &vplain) < 0) return -1;
      if (!vplain || vn == 0 || vn >= outsz || v[0] != '/' || memchr(v, 0, vn)) return -2;
      memcpy(out, v, vn);
      out[vn] = 0;
      found = 1;
    } else if (js_value(&j) < 0) {
      return -1;
    }
    r = js_next(&j, '}');
  }
  return r < 0 ? -1 : found;
}

/*
 * The "cniVersion" member this program's own error answers start with (the spec: an error carries the
 * request's version), as the full plugin picks it (src/cni/dispatch.ts): the request's top-level
 * "cniVersion" when it is "N.N.N", else "1.1.0". Empty while stdin is no JSON object: nothing to tell.
 */
static char version_member[64];

static void set_version_member(const struct buf *in) {
  struct js j = {.p = in->p, .end = in->p + in->len, .depth = 0};
  char version[32] = "1.1.0";
  int r = js_open(&j, '{');
  while (r == 1) {
    const char *k, *v;
    size_t kn, vn;
    int plain, vplain;
    if (js_key(&j, &k, &kn, &plain) < 0) return;
    if (plain && kn == 10 && memcmp(k, "cniVersion", 10) == 0) {
      strcpy(version, "1.1.0"); /* the last one counts, as in JSON.parse */
      if (j.p < j.end && *j.p == '"') {
        if (js_string(&j, &v, &vn, &vplain) < 0) return;
        int ok = vplain && vn > 0 && vn < sizeof version;
        for (size_t i = 0, dots = 0, digits = 0; ok && i <= vn; i++) {
          char c = i < vn ? v[i] : '.';
          if (c >= '0' && c <= '9') digits++;
          else if (c == '.' && digits > 0 && ++dots <= 3) digits = 0;
          else ok = 0;
          if (i == vn && dots != 3) ok = 0;
        }
        if (ok) {
          memcpy(version, v, vn);
          version[vn] = 0;
        }
      } else if (js_value(&j) < 0) {
        return;
      }
    } else if (js_value(&j) < 0) {
      return;
    }
    r = js_next(&j, '}');
  }
  if (r < 0) return;
  js_ws(&j);
  if (j.p != j.end) return;
  snprintf(version_member, sizeof version_member, "\"cniVersion\":\"%s\",", version);
}

/* In the object at j->p, moves j->p to the value of `key` (plain, unescaped): 1, 0 absent, -1 bad. */
static int js_find(struct js *j, const char *key) {
  size_t klen = strlen(key);
  int r = js_open(j, '{');
  while (r == 1) {
    const char *k;
    size_t kn;
    int plain;
    if (js_key(j, &k, &kn, &plain) < 0) return -1;
    if (plain && kn == klen && memcmp(k, key, klen) == 0) return 1;
    if (js_value(j) < 0) return -1;
    r = js_next(j, '}');
  }
  return r;
}

/*
 * The netconf's "delegate"."type" into out: 1 found, 0 absent (weft's default: bridge), -1 anything this
 * walker does not read plainly (no head start then; weftd decides as always). Only for the head start.
 */
static int netconf_delegate_type(const struct buf *in, char *out, size_t outsz) {
  struct js j = {.p = in->p, .end = in->p + in->len, .depth = 0};
  int r = js_find(&j, "delegate");
  if (r <= 0) return r;
  r = js_find(&j, "type");
  if (r <= 0) return r;
  const char *v;
  size_t vn;
  int plain;
  if (js_string(&j, &v, &vn, &plain) < 0 || !plain || vn == 0 || vn >= outsz) return -1;
  memcpy(out, v, vn);
  out[vn] = 0;
  return 1;
}

/* --- fallback: exec the full plugin with stdin replayed ------------------------------------------ */

static void kill_child(struct child *c);

static void fallback(const struct buf *in, const char *reason) {
  kill_child(&head); /* a head start weftd never asked for (see start_head) */
  char path[PATH_MAX];
  if (WEFT_CNI_FALLBACK[0] == '/') {
    snprintf(path, sizeof path, "%s", WEFT_CNI_FALLBACK);
  } else {
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
      printf("{%s\"code\":5,\"msg\":\"weft: cannot locate the full plugin: /proc/self/exe unreadable\"}\n",
             version_member);
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
    printf("{%s\"code\":5,\"msg\":\"weft: cannot replay stdin to the full plugin: %s\"}\n", version_member,
           strerror(errno));
    exit(1);
  }
  close(fd);
  setenv("WEFT_CNI_SHIM_FALLBACK", reason, 1);
  char *argv[] = {path, NULL};
  execv(path, argv);
  printf("{%s\"code\":5,\"msg\":\"weft: weftd is unavailable (%s) and the full plugin %s cannot run: %s\"}\n",
         version_member, reason, path, strerror(errno));
  exit(1);
}

/* --- the fast path ---------------------------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* True when process `pid` (weftd, from SO_PEERCRED; 0 when not visible in this pid namespace) is in a
 * stop state (SIGSTOP, SIGTSTP, a debugger): the field after the last ')' of /proc/<pid>/stat. */
static int is_stopped(pid_t pid) {
  if (pid <= 0) return 0;
  char path[64], st[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, st, sizeof st - 1);
  close(fd);
  if (n <= 0) return 0;
  st[n] = 0;
  const char *rp = strrchr(st, ')');
  return rp && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't');
}

#define STOPPED_GIVE_UP_MS 2000 /* weftd stopped this long while we wait: it is not coming back soon */
#define STOPPED_POLL_MS 250

/* Called when a wait for weftd found nothing: -1 (errno ETIMEDOUT) past `end`, -1 (errno ESRCH) once
 * weftd has been stopped for STOPPED_GIVE_UP_MS, else 0. */
static int keep_waiting(double end, double *stopped_since, pid_t weftd) {
  double now = now_ms();
  if (now >= end) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (!is_stopped(weftd)) {
    *stopped_since = -1;
  } else if (*stopped_since < 0) {
    *stopped_since = now;
  } else if (now - *stopped_since >= STOPPED_GIVE_UP_MS) {
    errno = ESRCH;
    return -1;
  }
  return 0;
}

/*
 * Reads exactly n bytes within timeout_ms. While nothing arrives, weftd's state is looked at every
 * 250 ms (`weftd`: its pid, 0 for none), and a weftd that stays stopped for 2 s (`kill -STOP`, a
 * debugger) ends the wait with ESRCH, so the caller runs the full plugin (DEL and GC work without
 * weftd; ADD answers "try again later") instead of waiting REPLY_TIMEOUT_MS. A resumed weftd drops the
 * request whose shim is gone (src/daemon/cni-server.ts).
 */
static int read_full(int fd, void *data, size_t n, int timeout_ms, pid_t weftd) {
  double end = now_ms() + timeout_ms, stopped_since = -1;
  char *p = data;
  while (n > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, STOPPED_POLL_MS);
    if (pr < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (pr > 0) {
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
      stopped_since = -1;
      continue;
    }
    if (keep_waiting(end, &stopped_since, weftd) < 0) return -1;
  }
  return 0;
}

/* write_all to weftd's socket, with read_full's deadline and stop check: a request larger than the
 * socket buffer would otherwise block for ever on a stopped weftd. */
static int send_full(int fd, const void *data, size_t n, int timeout_ms, pid_t weftd) {
  double end = now_ms() + timeout_ms, stopped_since = -1;
  const char *p = data;
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w >= 0) {
      p += w;
      n -= (size_t)w;
      stopped_since = -1;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (poll(&pfd, 1, STOPPED_POLL_MS) < 0 && errno != EINTR) return -1;
    if (pfd.revents == 0 && keep_waiting(end, &stopped_since, weftd) < 0) return -1;
  }
  return 0;
}

/* True when dirname(path) is (the real path of) one of this call's CNI_PATH directories. */
static int in_cni_path(const char *path) {
  char dir[PATH_MAX], real_dir[PATH_MAX], real_e[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path || strlen(slash + 1) == 0 || (size_t)(slash - path) >= sizeof dir) return 0;
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = 0;
  if (!realpath(dir, real_dir)) return 0;
  const char *cp = getenv("CNI_PATH");
  if (!cp) return 0;
  char *copy = strdup(cp), *save = NULL;
  int ok = 0;
  for (char *e = strtok_r(copy, ":", &save); e && !ok; e = strtok_r(NULL, ":", &save))
    if (realpath(e, real_e) && strcmp(real_e, real_dir) == 0) ok = 1;
  free(copy);
  return ok;
}

/* fork + exec `path` with `envp`, stdin and stdout piped, stderr shared; 0, or an errno. */
static int spawn_child(const char *path, char *const envp[], struct child *c) {
  int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
    int e = errno;
    for (int i = 0; i < 2; i++) {
      if (in_p[i] >= 0) close(in_p[i]);
      if (out_p[i] >= 0) close(out_p[i]);
      if (err_p[i] >= 0) close(err_p[i]);
    }
    return e;
  }
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL); /* as a runtime would start it */
    dup2(in_p[0], 0);
    dup2(out_p[1], 1);
    char *argv[] = {(char *)path, NULL};
    execve(path, argv, envp);
    int e = errno;
    if (write(err_p[1], &e, sizeof e) < 0) _exit(127);
    _exit(127);
  }
  int e = pid < 0 ? errno : 0;
  close(in_p[0]);
  close(out_p[1]);
  close(err_p[1]);
  if (pid < 0) {
    close(in_p[1]);
    close(out_p[0]);
    close(err_p[0]);
    return e;
  }
  *c = (struct child){.pid = pid, .in_fd = in_p[1], .out_fd = out_p[0], .err_fd = err_p[0]};
  return 0;
}

static void kill_child(struct child *c) {
  if (c->pid <= 0) return;
  kill(c->pid, SIGKILL);
  close(c->in_fd);
  close(c->out_fd);
  close(c->err_fd);
  while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {
  }
  c->pid = -1;
}

/*
 * Feeds a started delegate its stdin, collects its stdout (bounded), kills it at the timeout, reaps it:
 * kind/value as in "WCNE". Closes the child's fds.
 */
static void run_child(struct child *c, const char *input, size_t ilen, uint32_t timeout, uint32_t *kind,
                      uint32_t *value, uint32_t *flags, struct buf *out) {
  int e;
  ssize_t er = read(c->err_fd, &e, sizeof e); /* EOF at exec, or the errno of a failed exec */
  close(c->err_fd);
  fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
  size_t off = 0;
  int in_fd = c->in_fd, out_fd = c->out_fd, killed = 0;
  if (ilen == 0 || er == (ssize_t)sizeof e) {
    close(in_fd);
    in_fd = -1;
  }
  double deadline = now_ms() + timeout;
  char chunk[65536];
  while (out_fd >= 0) {
    struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = in_fd, .events = POLLOUT}};
    int left = (int)(deadline - now_ms());
    if (left <= 0 && !killed) {
      kill(c->pid, SIGKILL);
      killed = 1;
    }
    int pr = poll(p, in_fd >= 0 ? 2 : 1, killed ? 1000 : left);
    if (pr < 0 && errno != EINTR) break;
    if (pr == 0 && killed) break;
    if (in_fd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(in_fd, input + off, ilen - off);
      if (w > 0) off += (size_t)w;
      if (w < 0 && errno != EAGAIN && errno != EINTR) off = ilen; /* EPIPE: it stopped reading */
      if (off >= ilen) {
        close(in_fd);
        in_fd = -1;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(out_fd, chunk, sizeof chunk);
      if (r > 0) {
        if (out->len + (size_t)r > MAX_DELEGATE_OUT) *flags |= 1;
        else if (buf_add(out, chunk, (size_t)r) < 0) *flags |= 1;
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(out_fd);
        out_fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  if (out_fd >= 0) close(out_fd);
  int st = 0;
  while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
  }
  c->pid = -1;
  if (er == (ssize_t)sizeof e) {
    *kind = 2;
    *value = (uint32_t)e;
  } else if (WIFSIGNALED(st)) {
    *kind = 1;
    *value = (uint32_t)WTERMSIG(st);
  } else {
    *kind = 0;
    *value = (uint32_t)WEXITSTATUS(st);
  }
}

/*
 * Head start (ADD and DEL with the bridge delegate only): right before the request is sent (once the
 * server passed the root check), so that it starts while weftd works out the delegate's config, the
 * delegate weftd will most likely ask for is started already: the
 * reference `bridge` (weft's default delegate type) from the first CNI_PATH directory holding it, with
 * this program's own environment, which is exactly what weftd asks for on these commands. Like every
 * plugin built on the CNI skeleton it reads its whole stdin before it does anything, so it waits there
 * while its start-up (a Go runtime) overlaps weftd's work. The first "WCNX" uses it when path and
 * environment are exactly what weftd asks for; otherwise, or when weftd answers without asking (an
 * error), it is killed unused, before it has read a byte of config. Other delegate types (whose
 * behaviour before reading stdin weft does not know) are only started when weftd asks.
 */
static char head_path[PATH_MAX];

static void start_head(const struct buf *in) {
  const char *cmd = getenv("CNI_COMMAND"), *cp = getenv("CNI_PATH");
  if (!cmd || (strcmp(cmd, "ADD") != 0 && strcmp(cmd, "DEL") != 0) || !cp) return;
  char type[256] = "bridge";
  if (netconf_delegate_type(in, type, sizeof type) < 0 || strcmp(type, "bridge") != 0) return;
  /* weftd's findPlugin: the first CNI_PATH entry with a regular executable file of that name. */
  char *copy = strdup(cp), *save = NULL;
  if (!copy) return;
  int found = 0;
  for (char *e = strtok_r(copy, ":", &save); e && !found; e = strtok_r(NULL, ":", &save)) {
    size_t n = strlen(e);
    while (n > 1 && e[n - 1] == '/') e[--n] = 0; /* path.join drops them */
    struct stat st;
    if (snprintf(head_path, sizeof head_path, "%s/%s", e, type) >= (int)sizeof head_path) continue;
    if (stat(head_path, &st) == 0 && S_ISREG(st.st_mode) && access(head_path, X_OK) == 0) found = 1;
  }
  free(copy);
  if (!found || head_path[0] != '/' || strstr(head_path, "/./") || strstr(head_path, "/../")) return;
  if (spawn_child(head_path, environ, &head) != 0) head.pid = -1;
}

/* True when `envp` holds exactly the strings of this program's environment (in any order). */
static int same_env(char *const envp[]) {
  size_t n = 0, m = 0;
  for (char *const *e = envp; *e; e++) n++;
  for (char **e = environ; *e; e++) m++;
  if (n != m) return 0;
  for (char *const *e = envp; *e; e++) {
    int hit = 0;
    for (char **f = environ; *f && !hit; f++) hit = strcmp(*e, *f) == 0;
    if (!hit) return 0;
  }
  return 1;
}

/*
 * One "WCNX" from weftd (header already read): run the delegate with the given env and stdin (the head
 * start when it fits), collect its stdout (bounded), kill it at the timeout, answer "WCNE". -1 only when
 * the socket fails.
 */
static int serve_exec(int s, const unsigned char *h) {
  uint32_t timeout = get_u32(h + 4), plen = get_u32(h + 8), elen = get_u32(h + 12), ilen = get_u32(h + 16);
  if (plen == 0 || plen >= PATH_MAX || elen > MAX_ENV + 65536 || ilen > MAX_EXEC_STDIN) {
    errno = EPROTO;
    return -1;
  }
  char *data = malloc((size_t)plen + elen + ilen + 2);
  if (!data) return -1;
  if (read_full(s, data, (size_t)plen + elen + ilen, REPLY_TIMEOUT_MS, 0) < 0) return -1;
  char *path = data, *env = data + plen + 1, *input;
  memmove(env, data + plen, (size_t)elen + ilen);
  path[plen] = 0;
  input = env + elen;
  if ((elen > 0 && env[elen - 1] != 0) || memchr(path, 0, plen)) {
    errno = EPROTO;
    return -1;
  }
  size_t n_env = 0;
  for (uint32_t i = 0; i < elen; i++)
    if (env[i] == 0) n_env++;
  char **envp = calloc(n_env + 1, sizeof(char *));
  if (!envp) return -1;
  size_t k = 0;
  for (uint32_t i = 0; i < elen && k < n_env; k++) {
    envp[k] = env + i;
    i += (uint32_t)strlen(env + i) + 1;
  }
  envp[k] = NULL;

  uint32_t kind = 2, value = 0, flags = 0;
  struct buf out = {0};
  struct child c = {.pid = -1};
  if (head.pid > 0 && strcmp(path, head_path) == 0 && same_env(envp)) {
    c = head;
    head.pid = -1;
  } else {
    kill_child(&head);
  }
  if (c.pid > 0) {
    run_child(&c, input, ilen, timeout, &kind, &value, &flags, &out);
  } else if (!in_cni_path(path)) {
    value = EACCES;
  } else {
    int e = spawn_child(path, envp, &c);
    if (e != 0) value = (uint32_t)e;
    else run_child(&c, input, ilen, timeout, &kind, &value, &flags, &out);
  }
  free(envp);
  free(data);
  unsigned char rh[20];
  memcpy(rh, "WCNE", 4);
  put_u32(rh + 4, kind);
  put_u32(rh + 8, value);
  put_u32(rh + 12, (uint32_t)out.len);
  put_u32(rh + 16, flags);
  int rc = write_all(s, rh, sizeof rh) < 0 || (out.len > 0 && write_all(s, out.p, out.len) < 0) ? -1 : 0;
  free(out.p);
  return rc;
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

  set_version_member(&in);

  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int found = netconf_socket(&in, sa.sun_path, sizeof sa.sun_path);
  if (found == -2) {
    /* e.g. written with JSON escapes ("\/run\/weft\/cni.sock"): the netconf is valid, but this
     * shim never reaches weftd with it, so ADD must not answer "try again later" (11) for ever. */
    if (cmd && strcmp(cmd, "ADD") == 0) {
      printf("{%s\"code\":7,\"msg\":\"the netconf's \\\"daemonSocket\\\" is not a plain absolute path the weft "
             "shim can use\",\"details\":\"write it as an absolute path of at most %zu bytes without JSON "
             "escapes\"}\n",
             version_member, sizeof sa.sun_path - 1);
      return 1;
    }
    fallback(&in, "the netconf's \"daemonSocket\" is not a plain absolute path the shim can use");
  }
  if (found <= 0) snprintf(sa.sun_path, sizeof sa.sun_path, "%s", WEFT_CNI_DEFAULT_SOCKET);

  char reason[512];
  struct buf req = {0};
  size_t envlen = 0;
  for (char **e = environ; *e; e++) envlen += strlen(*e) + 1;
  if (envlen > MAX_ENV) {
    /* weftd refuses it however often the runtime retries, so ADD must not answer "try again later"
     * (code 11, what the full plugin says for a weftd it cannot reach): a permanent code 4. DEL and
     * the rest work in the full plugin, without weftd. */
    if (cmd && strcmp(cmd, "ADD") == 0) {
      printf("{%s\"code\":4,\"msg\":\"the environment (%zu bytes) is larger than the %u bytes weft passes to "
             "weftd\",\"details\":\"run the runtime with a smaller environment\"}\n",
             version_member, envlen, MAX_ENV);
      return 1;
    }
    fallback(&in, "the environment is too large for weftd");
  }
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
  /* SO_PEERCRED of a connected unix stream socket: the listener's, known before anything is sent. */
  struct ucred cred;
  socklen_t credlen = sizeof cred;
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) < 0 || cred.uid != 0) {
    snprintf(reason, sizeof reason, "%s is not served by root", sa.sun_path);
    fallback(&in, reason);
  }
  /* Before the request: once it is out, weftd runs and may take this CPU until it asks for the
   * delegate, which would then start only when weftd is done instead of beside it. */
  start_head(&in);
  if (send_full(s, req.p, req.len, REPLY_TIMEOUT_MS, cred.pid) < 0) {
    if (errno == ESRCH)
      snprintf(reason, sizeof reason, "weftd (pid %d) is stopped (SIGSTOP?) and does not read %s",
               (int)cred.pid, sa.sun_path);
    else
      snprintf(reason, sizeof reason, "sending to %s: %s", sa.sun_path, strerror(errno));
    fallback(&in, reason);
  }

  unsigned char rh[20];
  for (;;) {
    if (read_full(s, rh, sizeof rh, REPLY_TIMEOUT_MS, cred.pid) < 0) {
      if (errno == ESRCH)
        snprintf(reason, sizeof reason, "weftd (pid %d) is stopped (SIGSTOP?) and does not answer on %s",
                 (int)cred.pid, sa.sun_path);
      else
        snprintf(reason, sizeof reason, "no answer from weftd on %s: %s", sa.sun_path, strerror(errno));
      fallback(&in, reason);
    }
    if (memcmp(rh, "WCNX", 4) == 0) {
      if (serve_exec(s, rh) < 0) {
        snprintf(reason, sizeof reason, "running a delegate for weftd on %s failed: %s", sa.sun_path,
                 strerror(errno));
        fallback(&in, reason);
      }
      continue;
    }
    if (memcmp(rh, "WCNR", 4) == 0) {
      kill_child(&head); /* weftd answered without asking for it */
      break;
    }
    snprintf(reason, sizeof reason, "%s answered something that is not weftd's reply", sa.sun_path);
    fallback(&in, reason);
  }
  uint32_t status = get_u32(rh + 4), code = get_u32(rh + 8);
  uint32_t outlen = get_u32(rh + 12), errlen = get_u32(rh + 16);
  if (outlen > MAX_REPLY_PART || errlen > MAX_REPLY_PART) fallback(&in, "weftd's reply is too large");
  char *out = malloc((size_t)outlen + errlen + 1);
  if (!out) fallback(&in, "out of memory");
  if (read_full(s, out, (size_t)outlen + errlen, REPLY_TIMEOUT_MS, cred.pid) < 0) {
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
