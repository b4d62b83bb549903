#!/usr/bin/env bash
# `npm test`: installs what a fresh machine lacks, type-checks, starts ONE throwaway RabbitMQ node
# (own node name, ports, data dir) for the whole run unless $AMQP_URL names one, and runs every
# test layer with node's test runner. `npm test -- unit` runs only the socket-free unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
layer="${1:-all}"

if [ ! -d node_modules ]; then
  echo "[test] node_modules missing: running npm ci"
  npm ci
fi

need_rabbit=1
[ "$layer" = unit ] && need_rabbit=0
[ -n "${AMQP_URL:-}" ] && need_rabbit=0
need_chromium=0
case "$layer" in all | e2e) need_chromium=1 ;; esac
need_nginx=0
case "$layer" in all | integration) need_nginx=1 ;; esac

# Debian packages this run needs and the machine lacks, installed in one go when we are root.
missing=()
if [ "$need_rabbit" = 1 ] && [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then missing+=(rabbitmq-server); fi
if [ "$need_chromium" = 1 ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
# nginx -t of broker/deploy/nginx.conf (test/integration/deploy-files.test.ts); its TCP part needs
# the stream module, a separate package on Debian.
if [ "$need_nginx" = 1 ] && [ ! -x /usr/sbin/nginx ]; then missing+=(nginx); fi
if [ "$need_nginx" = 1 ] && [ ! -f /usr/lib/nginx/modules/ngx_stream_module.so ]; then missing+=(libnginx-mod-stream); fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[test] installing Debian's ${missing[*]} (once)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[test] missing Debian packages: ${missing[*]}. Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    case " ${missing[*]} " in *" rabbitmq-server "*)
      echo "[test] (or point the tests at a RabbitMQ node: AMQP_URL=amqp://user:pass@127.0.0.1:5672 npm test)" >&2 ;;
    esac
    exit 1
  fi
fi

echo "[test] type-check (tsc $(npx tsc --version | awk '{print $2}'))"
npx tsc --noEmit -p tsconfig.json

case "$layer" in
  unit) dirs="test/unit" ;;
  integration) dirs="test/integration" ;;
  e2e) dirs="test/e2e" ;;
  all) dirs="test/unit test/integration test/e2e" ;;
  *) echo "unknown test layer '$layer' (unit | integration | e2e | all)" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
files=$(find $dirs -name '*.test.ts' 2>/dev/null | sort)
[ -n "$files" ] || { echo "[test] no test files under $dirs" >&2; exit 1; }

state=""
cleanup() {
  if [ -n "$state" ] && [ -f "$state" ]; then
    npx tsx test/harness/rabbitmq-cli.ts stop "$state" || true
  fi
}
trap cleanup EXIT
if [ "$need_rabbit" = 1 ]; then
  mkdir -p .tmp
  state="$(mktemp -p .tmp rabbit-state.XXXXXX.json)"
  echo "[test] starting a throwaway RabbitMQ node"
  npx tsx test/harness/rabbitmq-cli.ts start "$state"
  THUMPER_TEST_RABBIT="$(cat "$state")"
  export THUMPER_TEST_RABBIT
fi

# shellcheck disable=SC2086
node --import tsx --test --test-reporter=spec $files
