/**
 * The parts of the `netlink` package weft uses: rtnetlink sockets, their message structs, the VXLAN
 * link-info attributes and the flag constants, each from its own file in the package. Its index also
 * loads the nl80211 (Wi-Fi), generic-netlink and WireGuard tables, about half of its code, which weft
 * never uses; they stay unloaded (and out of the packaged bundle). The files are the package's
 * compiled output (dist/), pinned by package.json's exact version like the patch in
 * scripts/postinstall.mjs. They are required by one CommonJS module (netlink-files.cts): importing
 * each CommonJS file from an ES module separately cost the checkout's weftd ~2 MiB more at start than
 * the whole index (bench/lib/dep-rss.ts), through Node's CommonJS-to-ESM interop.
 */
export { AttrStream, createRtNetlink, FlagsGet, FlagsNew, ifla, rt } from './netlink-files.cjs';
export type { RtNetlinkSocket } from 'netlink/dist/rt/rt.js';
