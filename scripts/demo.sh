#!/usr/bin/env bash
# weft's one-command demo: 3 simulated hosts in network namespaces, etcd, weftd on each host, 2 containers
# per host through the weft CNI plugin; prints the leases, a ping matrix and an iperf3 figure, and leaves
# the cluster running until `scripts/demo.sh down`.
#   sudo scripts/demo.sh [up] [--backend vxlan|host-gw|udp|wireguard]
#   sudo scripts/demo.sh down
# On Debian 12 as root it first installs what is missing (Debian packages, npm ci, build); set
# WEFT_DEMO_SKIP_INSTALL=1 to skip that (the e2e test does, test.sh already did it). Everything it creates
# is named weft-demo* and lives in its own namespaces and in /run/weft-demo (WEFT_DEMO_STATE_DIR);
# nothing is added to the root network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for a in "$@"; do
  case "$a" in -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
done
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces): sudo scripts/demo.sh $*"

cmd=up
for a in "$@"; do case "$a" in down) cmd=down ;; esac; done

if [ "$cmd" = up ] && [ "${WEFT_DEMO_SKIP_INSTALL:-0}" != 1 ]; then
  # 1. Debian packages (only what is missing).
  need=()
  for pair in etcd:etcd-server etcdctl:etcd-client ip:iproute2 ping:iputils-ping nft:nftables \
              iperf3:iperf3 g++:g++ make:make python3:python3; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
  # the native addon's WireGuard engine links libsodium and OpenSSL's libcrypto
  dpkg -s libsodium-dev >/dev/null 2>&1 || need+=(libsodium-dev)
  dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # 2. Node.js >= 20 (Debian 12's own nodejs is 18: install Node 20 first, e.g. from your usual source).
  command -v node >/dev/null 2>&1 || die "Node.js 20 or newer is needed and was not found"
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is needed, found $(node --version)"
  # 3. npm ci when node_modules is missing or older than the lock file; build when sources changed.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  if [ ! -f dist/daemon/main.js ] || [ ! -f dist/cni/weft.cjs ] ||
     [ -n "$(find src -newer dist/cni/weft.cjs -name '*.ts' -print -quit)" ]; then
    say "npm run build"
    npm run --silent build
  fi
fi

[ -f node_modules/tsx/package.json ] || die "node_modules/tsx is missing: run npm ci (with dev dependencies)"
exec node --import tsx scripts/demo/main.ts "$@"
