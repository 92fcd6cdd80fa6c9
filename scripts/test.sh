#!/usr/bin/env bash
# The one test command (README). Installs what the suite needs on Debian 12, builds, runs every tier,
# and ends with a line "N passed, N failed". Exits non-zero on any failure.
#   scripts/test.sh                 all tiers
#   scripts/test.sh unit            one tier (unit | integration | e2e), or a vitest filter after it
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# 1. System packages the suite uses (only what is missing; apt lists refreshed once).
need=()
for pair in etcd:etcd-server etcdctl:etcd-client ip:iproute2 ping:iputils-ping nft:nftables \
            iptables:iptables iperf3:iperf3 ethtool:ethtool openssl:openssl g++:g++ make:make \
            python3:python3 podman:podman runc:runc dpkg-shlibdeps:dpkg-dev \
            systemd-analyze:systemd dockerd:docker.io wireguard-go:wireguard-go \
            wg:wireguard-tools tcpdump:tcpdump strace:strace; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
# podman test: busybox image built from the static busybox (crun fails on cgroup v1 hosts, hence runc)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
# native addon: the WireGuard engine's crypto (libsodium, OpenSSL's libcrypto)
dpkg -s libsodium-dev >/dev/null 2>&1 || need+=(libsodium-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
# native fuzz target: clang's libFuzzer runtime
command -v clang >/dev/null 2>&1 || need+=(clang)
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing packages: ${need[*]} (run as root to install them)" >&2; exit 1; fi
  log "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. Dependencies (native addons are built from source here, offline) and the build.
log "npm ci"
npm ci --no-audit --no-fund --loglevel=error
log "build"
npm run --silent build

# Checks that count as one test each: typecheck, lint (eslint + prettier), native C unit tests.
check_passed=0; check_failed=0; check_failures=""
check() {
  local name=$1; shift
  log "$name"
  if "$@"; then check_passed=$((check_passed + 1)); else
    check_failed=$((check_failed + 1)); check_failures+="$name"$'\n'; echo "FAILED: $name" >&2
  fi
}
check typecheck npm run --silent typecheck
check lint npm run --silent lint
[ -f native/test/Makefile ] && check "native unit tests" make -s -C native/test check
fuzz() { # bounded libFuzzer run of the forwarder's receive/transmit paths; its chatter goes to a log
  local out; out=$(mktemp /tmp/weft-fuzz-XXXXXX.log)
  if make -s -C native/test fuzz FUZZ_SECONDS="${WEFT_FUZZ_SECONDS:-20}" >"$out" 2>&1; then
    grep -E '^Done [0-9]+ runs' "$out" || tail -n 3 "$out"; rm -f "$out"
  else
    tail -n 40 "$out"; rm -f "$out"; return 1
  fi
}
[ -f native/test/Makefile ] && check "native fuzz (libFuzzer, bounded)" fuzz

# The three tiers, one after another (integration and e2e are timing-sensitive on 2 cores), each with a
# machine-readable report for the count line.
tiers=(unit integration e2e)
filter=()
if [ $# -gt 0 ]; then
  case "$1" in unit|integration|e2e) tiers=("$1"); shift ;; esac
  filter=("$@")
  if [ ${#filter[@]} -gt 0 ]; then export WEFT_TEST_FILTERED=1; filter+=(--passWithNoTests); fi
fi
# The Debian package (npm run package) for the e2e tests that run the packaged executables; gzip
# instead of xz keeps this step short (the contents are the same).
if [[ " ${tiers[*]} " == *" e2e "* ]]; then
  check "package (.deb)" node scripts/package.mjs --fast
fi
reports=$(mktemp -d /tmp/weft-vitest-XXXXXX)
trap 'rm -rf "$reports"' EXIT
rcs=()
for tier in "${tiers[@]}"; do
  log "vitest: $tier"
  set +e
  npx vitest run --project "$tier" --reporter=default --reporter=json \
    --outputFile.json="$reports/$tier.json" "${filter[@]}"
  rcs+=("$tier=$?")
  set -e
done

node - "$reports" "$check_passed" "$check_failed" "$check_failures" "${rcs[@]}" <<'NODE'
const fs = require('node:fs');
const path = require('node:path');
const [dir, cp, cf, checkFailures, ...rcs] = process.argv.slice(2);
let passed = Number(cp), failed = Number(cf), skipped = 0;
// every failure is named again at the end, where a CI log's tail shows it
const failures = checkFailures.split('\n').filter(Boolean).map((name) => `check: ${name}`);
for (const entry of rcs) {
  const [tier, rc] = entry.split('=');
  let tierFailed = 0;
  try {
    const r = JSON.parse(fs.readFileSync(path.join(dir, `${tier}.json`), 'utf8'));
    passed += r.numPassedTests;
    tierFailed += r.numFailedTests;
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    // a file that failed to load (syntax error, failing hook) counts as a failure too
    for (const file of r.testResults ?? []) {
      const rel = path.relative(process.cwd(), file.name ?? '');
      if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) {
        tierFailed += 1;
        failures.push(`${tier}: ${rel}: ${(file.message ?? 'failed to load').split('\n')[0]}`);
      }
      for (const t of file.assertionResults ?? []) {
        if (t.status !== 'failed') continue;
        const why = (t.failureMessages ?? [])[0]?.split('\n')[0] ?? '';
        failures.push(`${tier}: ${rel} > ${t.fullName ?? t.title}${why ? `: ${why.slice(0, 300)}` : ''}`);
      }
    }
    if (r.numTotalTests === 0 && !process.env.WEFT_TEST_FILTERED) {
      console.error(`vitest ran no test in tier ${tier}`);
      tierFailed += 1;
    }
  } catch (e) {
    console.error(`could not read the vitest report of tier ${tier}: ${e.message}`);
    tierFailed += 1;
  }
  // vitest failed outside any test (e.g. a global teardown or leak check)
  if (Number(rc) !== 0 && tierFailed === 0) {
    tierFailed = 1;
    failures.push(`${tier}: vitest exited ${rc} outside any test (see its output above)`);
  }
  failed += tierFailed;
}
if (failures.length > 0) console.log(`\nFailed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
console.log(`\n${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed > 0 ? 1 : 0);
NODE
