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
            python3:python3 podman:podman runc:runc; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
# podman test: busybox image built from the static busybox (crun fails on cgroup v1 hosts, hence runc)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing packages: ${need[*]} (run as root to install them)" >&2; exit 1; fi
  log "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. Dependencies (native addons are built from source here, offline) and the build.
log "npm ci"
npm ci --no-audit --no-fund --loglevel=error
log "build + lint"
npm run --silent build
npm run --silent typecheck
npm run --silent lint

# 3. Native unit tests (C), when the native tree has them.
native_failed=0; native_passed=0
if [ -f native/test/Makefile ]; then
  log "native unit tests"
  if make -s -C native/test check; then native_passed=1; else native_failed=1; fi
fi

# 4. The three tiers through vitest, with a machine-readable report for the count line.
log "vitest"
projects=(--project unit --project integration --project e2e)
filter=()
if [ $# -gt 0 ]; then
  case "$1" in unit|integration|e2e) projects=(--project "$1"); shift ;; esac
  filter=("$@")
fi
report=$(mktemp /tmp/weft-vitest-XXXXXX.json)
trap 'rm -f "$report"' EXIT
set +e
npx vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$report" "${filter[@]}"
vitest_rc=$?
set -e

node - "$report" "$native_passed" "$native_failed" "$vitest_rc" <<'NODE'
const fs = require('node:fs');
const [file, np, nf, rc] = process.argv.slice(2);
let passed = Number(np), failed = Number(nf), skipped = 0;
try {
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed += r.numPassedTests; failed += r.numFailedTests;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // a file that failed to load (syntax error, failing hook) counts as a failure too
  failed += (r.testResults ?? []).filter((t) => t.status === 'failed' && (t.assertionResults ?? []).length === 0).length;
} catch (e) {
  console.error(`could not read the vitest report: ${e.message}`);
  failed += 1;
}
if (Number(rc) !== 0 && failed === 0) failed = 1; // vitest failed outside any test (e.g. a global teardown)
console.log(`\n${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed > 0 ? 1 : 0);
NODE
