/**
 * The parts of the `netlink` package weft uses: rtnetlink sockets, their message structs, the VXLAN
 * link-info attributes and the flag constants, each from its own file in the package. Its index also
 * loads the nl80211 (Wi-Fi), generic-netlink and WireGuard tables, about half of its code, which weft
 * never uses; they stay unloaded (and out of the packaged bundle). The files are the package's
 * compiled output (dist/), pinned by package.json's exact version like the patch in
 * scripts/postinstall.mjs.
 */
export { FlagsGet, FlagsNew } from 'netlink/dist/constants.js';
export { AttrStream } from 'netlink/dist/structs.js';
export { createRtNetlink, type RtNetlinkSocket } from 'netlink/dist/rt/rt.js';
export * as rt from 'netlink/dist/rt/structs.js';
export * as ifla from 'netlink/dist/rt/ifla.js';
