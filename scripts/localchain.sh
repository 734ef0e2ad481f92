#!/usr/bin/env bash
# A local Subtensor runtime (spec 218) under Chopsticks, for developers (../shared/local_chain.md).
#
#   scripts/localchain.sh start     # ws://127.0.0.1:9944, blocks built on demand (dev_newBlock)
#   scripts/localchain.sh seed      # create and populate a subnet; prints what was written (JSON)
#   scripts/localchain.sh status
#   scripts/localchain.sh stop
#
# Environment: YUMAFLOW_LOCAL_CHAIN_PORT (default 9944), YUMAFLOW_LOCAL_CHAIN_SPEC (a raw chain spec;
# default ../shared/chain/raonet-spec218.json next to the repo), YUMAFLOW_LOCAL_CHAIN_DIR (pid file and
# log; default data/localchain). Needs `npm ci --no-audit --no-fund --ignore-scripts` once. Tests do not use this
# script: they start their own chain on a free port (tests/support/localchain.py).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
port="${YUMAFLOW_LOCAL_CHAIN_PORT:-9944}"
spec="${YUMAFLOW_LOCAL_CHAIN_SPEC:-$repo/../shared/chain/raonet-spec218.json}"
state_dir="${YUMAFLOW_LOCAL_CHAIN_DIR:-$repo/data/localchain}"
pid_file="$state_dir/chopsticks.pid"
log_file="$state_dir/chopsticks.log"
entry="$repo/node_modules/@acala-network/chopsticks/chopsticks.cjs"
url="ws://127.0.0.1:$port"
startup_timeout_s=90

rpc() {  # rpc METHOD PARAMS_JSON -> the JSON answer (empty if nothing listens)
  curl -s --max-time 2 -H 'Content-Type: application/json' \
    -d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$1\",\"params\":$2}" "http://127.0.0.1:$port" || true
}

running_pgid() {  # prints the process group id if our chain is running
  [ -f "$pid_file" ] || return 1
  local pgid
  pgid="$(cat "$pid_file")"
  kill -0 -- "-$pgid" 2>/dev/null || return 1
  echo "$pgid"
}

start() {
  if pgid="$(running_pgid)"; then
    echo "already running (process group $pgid) at $url"; return 0
  fi
  [ -f "$entry" ] || { echo "Chopsticks is not installed: run \`npm ci --no-audit --no-fund --ignore-scripts\` in $repo" >&2; exit 1; }
  [ -f "$spec" ] || { echo "raw chain spec not found: $spec (set YUMAFLOW_LOCAL_CHAIN_SPEC)" >&2; exit 1; }
  mkdir -p "$state_dir"
  # setsid: Chopsticks leads its own process group, so `stop` can end all of it at once. Run from the
  # state dir so it reads no .env of ours. No --endpoint and no --db: nothing is fetched, state is in memory.
  (cd "$state_dir" && exec setsid node "$entry" --genesis="$spec" --host=127.0.0.1 --port="$port" \
    --build-block-mode=Manual </dev/null >"$log_file" 2>&1) &
  echo $! >"$pid_file"
  local started=$SECONDS
  until rpc chain_getHeader '[]' | grep -q '"number"'; do
    if ! running_pgid >/dev/null; then
      echo "Chopsticks exited during start-up; last lines of $log_file:" >&2; tail -n 40 "$log_file" >&2
      rm -f "$pid_file"; exit 1
    fi
    if (( SECONDS - started > startup_timeout_s )); then
      echo "Chopsticks not ready after ${startup_timeout_s}s; last lines of $log_file:" >&2
      tail -n 40 "$log_file" >&2; stop; exit 1
    fi
    sleep 0.2
  done
  echo "running at $url (process group $(cat "$pid_file"), ready in $((SECONDS - started))s, log $log_file)"
}

stop() {
  local pgid
  if ! pgid="$(running_pgid)"; then
    echo "not running"; rm -f "$pid_file"; return 0
  fi
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 -- "-$pgid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  rm -f "$pid_file"
  echo "stopped (process group $pgid)"
}

status() {
  local pgid
  if pgid="$(running_pgid)"; then
    local version head
    version="$(rpc state_getRuntimeVersion '[]' | grep -o '"specVersion":[0-9]*' || true)"
    head="$(rpc chain_getHeader '[]' | grep -o '"number":"0x[0-9a-f]*"' || true)"
    echo "running at $url (process group $pgid) ${version} head ${head}"
  else
    echo "not running"; return 3
  fi
}

seed() {
  running_pgid >/dev/null || { echo "not running: scripts/localchain.sh start" >&2; exit 1; }
  cd "$repo" && exec .venv/bin/python -m tests.support.seed_subnet "$url"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  seed) seed ;;
  *) echo "usage: $0 start|stop|status|seed" >&2; exit 2 ;;
esac
