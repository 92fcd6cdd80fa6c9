#!/usr/bin/env node
// Runs after `npm install` / `npm ci` (and as `npm run build:native`). Offline by design:
//  1. patches netlink@0.3.0's native binding so a netlink socket overflow can never abort the process
//     (README "Dependency decisions"), then rebuilds it from source;
//  2. builds weft's own addon in native/.
// Both builds use node-gyp with the machine's Node headers (/usr/include/node on Debian), so nothing is
// downloaded. Any failure stops the install with a message saying what to install.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

function nodeGyp(cwd) {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  const args = [gyp, 'rebuild', '--silent'];
  // Debian's nodejs ships headers under /usr/include/node; point node-gyp there so it never downloads.
  if (existsSync(join(dirname(process.execPath), '..', 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${join(dirname(process.execPath), '..')}`);
  }
  try {
    execFileSync(process.execPath, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    console.error(
      `weft: native build failed in ${cwd}. It needs g++, make and python3 ` +
        '(`apt-get install -y g++ make python3`), the Node headers (Debian: package nodejs or libnode-dev) ' +
        "and, for weft's addon, libsodium and libcrypto (`apt-get install -y libsodium-dev libssl-dev`).",
    );
    process.exit(1);
  }
}

// --- 1. netlink ---------------------------------------------------------------------------------
const MARK = '/* weft-patch-1 */';
const patches = [
  {
    // A poll error (ENOBUFS on overflow) built its errno exception with a NULL syscall name, which
    // throws a C++ exception inside a libuv callback: std::terminate. Give it a name.
    from: 'ErrnoException(obj->Env(), -status, NULL, "error when polling socket")',
    to: 'ErrnoException(obj->Env(), -status, "poll", "error when polling socket")',
  },
  {
    // A JS exception thrown by a callback (an 'error' event without a listener, a parse bug) surfaced
    // as a C++ exception in a libuv callback: std::terminate again. Route it to 'uncaughtException'.
    from: `    static void PollHandler(uv_poll_t* handle, int status, int events) {
        Socket* obj = static_cast<Socket*>(handle->data);
        Napi::HandleScope scope (obj->Env());`,
    to: `    static void PollHandler(uv_poll_t* handle, int status, int events) {
        Socket* obj = static_cast<Socket*>(handle->data);
        Napi::Env env = obj->Env();
        Napi::HandleScope scope (env);
        try { PollHandlerInner(obj, status, events); }
        catch (const Napi::Error& e) { napi_fatal_exception(env, e.Value()); }
    }

    static void PollHandlerInner(Socket* obj, int status, int events) {`,
  },
  {
    from: `    static void TimerHandler(uv_timer_t* handle) {
        Socket* obj = static_cast<Socket*>(handle->data);
        Napi::HandleScope scope (obj->Env());
        assert(obj->async_res);
        obj->Sendmsg();
        obj->RunCompleted();`,
    to: `    static void TimerHandler(uv_timer_t* handle) {
        Socket* obj = static_cast<Socket*>(handle->data);
        Napi::Env env = obj->Env();
        Napi::HandleScope scope (env);
        assert(obj->async_res);
        try { obj->Sendmsg(); obj->RunCompleted(); }
        catch (const Napi::Error& e) { napi_fatal_exception(env, e.Value()); }`,
  },
];

const nlDir = dirname(require.resolve('netlink/package.json'));
const nlVersion = JSON.parse(readFileSync(join(nlDir, 'package.json'), 'utf8')).version;
if (nlVersion !== '0.3.0') {
  console.error(
    `weft: netlink ${nlVersion} found, but the safety patch is written for 0.3.0; pin netlink@0.3.0`,
  );
  process.exit(1);
}
const srcFile = join(nlDir, 'src', 'binding.cc');
let src = readFileSync(srcFile, 'utf8');
if (!src.startsWith(MARK)) {
  for (const p of patches) {
    if (!src.includes(p.from)) {
      console.error(
        `weft: netlink binding.cc does not contain the expected code; cannot apply patch:\n${p.from}`,
      );
      process.exit(1);
    }
    src = src.replace(p.from, p.to);
  }
  writeFileSync(srcFile, `${MARK}\n${src}`);
}
// Never load the unpatched prebuilds shipped in the package.
rmSync(join(nlDir, 'prebuilds'), { recursive: true, force: true });
if (
  !existsSync(join(nlDir, 'build', 'Release', 'netlink_binding.node')) ||
  process.argv.includes('--force')
) {
  nodeGyp(nlDir);
}

// --- 2. weft's own addon ------------------------------------------------------------------------
nodeGyp(join(root, 'native'));
