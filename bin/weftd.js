#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2 (MiB): V8's young generation otherwise grows to 2 × 16 MiB semi-spaces under
// weftd's bursts (etcd watch events, netlink dumps), ~20-28 MB of RSS at 1000 peers; with 2 MiB the
// 5000-peer reconcile time is unchanged (bench/rss.ts, bench/netlink.ts; numbers in the commit message).
// V8 sizes the young generation once at start-up (v8.setFlagsFromString has no effect on it), so the
// flag must be on node's command line: this line applies it when weftd is run as an executable (npm bin
// link, a systemd ExecStart of this file). `node bin/weftd.js` runs without it.
import '../dist/daemon/main.js';
