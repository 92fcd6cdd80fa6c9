// The netlink package's files weft uses (src/netlink/package.ts), required by this one CommonJS module so
// that an ES-module weftd (the checkout's dist/) goes through Node's CommonJS-to-ESM interop once, not
// once per file. Plain JavaScript syntax only: vitest loads this file without stripping TypeScript.
import * as rt from 'netlink/dist/rt/structs.js';
import * as ifla from 'netlink/dist/rt/ifla.js';

export { FlagsGet, FlagsNew } from 'netlink/dist/constants.js';
export { AttrStream } from 'netlink/dist/structs.js';
export { createRtNetlink } from 'netlink/dist/rt/rt.js';
export { rt, ifla };
