/* LPM route table (see route_table.h): hash per (family, length, masked address). */
#include "route_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { EMPTY = 0, USED = 1, TOMB = 2 };

struct slot {
  uint8_t state;
  uint32_t refs; /* peer hash only */
  struct rt_route r;
};

struct hash {
  struct slot *slots;
  size_t cap; /* power of two */
  size_t used;
  size_t tombs;
};

struct rt_table {
  struct hash routes;
  struct hash peers; /* key: family 4, len 32, addr = peer ip; refs = number of routes */
  /* per family: how many routes have each prefix length, and the lengths in use, longest first */
  uint32_t len_count[2][129];
  uint8_t lens[2][129];
  uint8_t nlens[2];
  size_t max; /* most routes the table takes; 0 = no limit */
};

static int fam_index(int family) { return family == 4 ? 0 : 1; }
static int addr_bytes(int family) { return family == 4 ? 4 : 16; }

static void mask_addr(int family, const uint8_t *in, int len, uint8_t out[16]) {
  memset(out, 0, 16);
  int n = addr_bytes(family);
  for (int i = 0; i < n; i++) {
    int bits = len - i * 8;
    uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
    out[i] = in[i] & m;
  }
}

static uint64_t hash_key(int family, int len, const uint8_t addr[16]) {
  uint64_t a, b;
  memcpy(&a, addr, 8);
  memcpy(&b, addr + 8, 8);
  uint64_t h = (uint64_t)family * 0x9E3779B97F4A7C15ull ^ (uint64_t)len * 0xC2B2AE3D27D4EB4Full;
  h ^= a * 0x165667B19E3779F9ull;
  h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull;
  h ^= b * 0x94D049BB133111EBull;
  h ^= h >> 32;
  return h;
}

static int key_eq(const struct rt_route *r, int family, int len, const uint8_t addr[16]) {
  return r->family == family && r->len == len && memcmp(r->addr, addr, 16) == 0;
}

/* Slot holding the key, or NULL. */
static struct slot *h_find(const struct hash *h, int family, int len, const uint8_t addr[16]) {
  if (h->cap == 0) return NULL;
  size_t mask = h->cap - 1;
  for (size_t i = hash_key(family, len, addr) & mask, n = 0; n < h->cap; i = (i + 1) & mask, n++) {
    struct slot *s = &h->slots[i];
    if (s->state == EMPTY) return NULL;
    if (s->state == USED && key_eq(&s->r, family, len, addr)) return s;
  }
  return NULL;
}

static int h_resize(struct hash *h, size_t cap) {
  struct slot *ns = calloc(cap, sizeof(*ns));
  if (!ns) return -ENOMEM;
  for (size_t i = 0; i < h->cap; i++) {
    struct slot *s = &h->slots[i];
    if (s->state != USED) continue;
    size_t j = hash_key(s->r.family, s->r.len, s->r.addr) & (cap - 1);
    while (ns[j].state == USED) j = (j + 1) & (cap - 1);
    ns[j] = *s;
  }
  free(h->slots);
  h->slots = ns;
  h->cap = cap;
  h->tombs = 0;
  return 0;
}

/* Capacity for `n` live entries after a rehash: load at most 1/4, so tombstones have room. */
static size_t cap_for(size_t n) {
  size_t cap = 16;
  while (cap < n * 4) cap *= 2;
  return cap;
}

/* Slot for inserting the key (existing or new, state USED), or NULL on allocation failure. */
static struct slot *h_insert(struct hash *h, int family, int len, const uint8_t addr[16],
                             int *created) {
  struct slot *s = h_find(h, family, len, addr);
  *created = 0;
  if (s) return s;
  if ((h->used + h->tombs + 1) * 2 > h->cap) {
    if (h_resize(h, cap_for(h->used + 1)) != 0) return NULL;
  }
  size_t mask = h->cap - 1;
  size_t i = hash_key(family, len, addr) & mask;
  while (h->slots[i].state == USED) i = (i + 1) & mask;
  s = &h->slots[i];
  if (s->state == TOMB) h->tombs--;
  memset(s, 0, sizeof(*s));
  s->state = USED;
  s->r.family = (uint8_t)family;
  s->r.len = (uint8_t)len;
  memcpy(s->r.addr, addr, 16);
  h->used++;
  *created = 1;
  return s;
}

static void h_remove(struct hash *h, struct slot *s) {
  s->state = TOMB;
  h->used--;
  h->tombs++;
}

struct rt_table *rt_new(void) { return calloc(1, sizeof(struct rt_table)); }

void rt_free(struct rt_table *t) {
  if (!t) return;
  free(t->routes.slots);
  free(t->peers.slots);
  free(t);
}

static void rebuild_lens(struct rt_table *t, int fi) {
  uint8_t n = 0;
  for (int l = 128; l >= 0; l--) {
    if (t->len_count[fi][l]) t->lens[fi][n++] = (uint8_t)l;
  }
  t->nlens[fi] = n;
}

static void peer_ref(struct rt_table *t, uint32_t ip, int delta) {
  uint8_t key[16] = {0};
  memcpy(key, &ip, 4);
  if (delta > 0) {
    int created;
    struct slot *s = h_insert(&t->peers, 4, 32, key, &created);
    if (s) s->refs++;
    return;
  }
  struct slot *s = h_find(&t->peers, 4, 32, key);
  if (s && --s->refs == 0) h_remove(&t->peers, s);
}

int rt_set(struct rt_table *t, int family, const uint8_t *addr, int len, uint32_t peer_ip,
           uint16_t peer_port) {
  if ((family != 4 && family != 6) || len < 0 || len > addr_bytes(family) * 8) return -EINVAL;
  uint8_t key[16];
  mask_addr(family, addr, len, key);
  /* Make sure the peer hash can take one more entry before touching anything. */
  uint8_t pkey[16] = {0};
  memcpy(pkey, &peer_ip, 4);
  if (!h_find(&t->peers, 4, 32, pkey) && (t->peers.used + t->peers.tombs + 1) * 2 > t->peers.cap) {
    if (h_resize(&t->peers, cap_for(t->peers.used + 1)) != 0) return -ENOMEM;
  }
  if (t->max && t->routes.used >= t->max && !h_find(&t->routes, family, len, key)) return -ENOSPC;
  int created;
  struct slot *s = h_insert(&t->routes, family, len, key, &created);
  if (!s) return -ENOMEM;
  int fi = fam_index(family);
  if (created) {
    if (t->len_count[fi][len]++ == 0) rebuild_lens(t, fi);
  } else {
    peer_ref(t, s->r.peer_ip, -1);
  }
  s->r.peer_ip = peer_ip;
  s->r.peer_port = peer_port;
  peer_ref(t, peer_ip, +1);
  return 0;
}

int rt_del(struct rt_table *t, int family, const uint8_t *addr, int len) {
  if ((family != 4 && family != 6) || len < 0 || len > addr_bytes(family) * 8) return -EINVAL;
  uint8_t key[16];
  mask_addr(family, addr, len, key);
  struct slot *s = h_find(&t->routes, family, len, key);
  if (!s) return -ENOENT;
  peer_ref(t, s->r.peer_ip, -1);
  h_remove(&t->routes, s);
  int fi = fam_index(family);
  if (--t->len_count[fi][len] == 0) rebuild_lens(t, fi);
  return 0;
}

const struct rt_route *rt_lookup(const struct rt_table *t, int family, const uint8_t *addr) {
  int fi = fam_index(family);
  uint8_t key[16];
  for (int i = 0; i < t->nlens[fi]; i++) {
    int len = t->lens[fi][i];
    mask_addr(family, addr, len, key);
    const struct slot *s = h_find(&t->routes, family, len, key);
    if (s) return &s->r;
  }
  return NULL;
}

unsigned rt_peer_refs(const struct rt_table *t, uint32_t peer_ip) {
  uint8_t key[16] = {0};
  memcpy(key, &peer_ip, 4);
  const struct slot *s = h_find(&t->peers, 4, 32, key);
  return s ? s->refs : 0;
}

size_t rt_count(const struct rt_table *t) { return t->routes.used; }

void rt_set_max(struct rt_table *t, size_t max) { t->max = max; }
