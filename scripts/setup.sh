#!/usr/bin/env bash
# Creates or refreshes .venv at the repo root from the lock (requirements.txt).
# Re-runs only when the lock or pyproject changed since the last install (.venv/.installed stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
stamp=.venv/.installed
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"

# The local Subtensor runtime for tests (Chopsticks, pinned in package-lock.json), when node is present.
if [ -f package-lock.json ]; then
  npm_want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ ! -f node_modules/.installed ] || [ "$(cat node_modules/.installed)" != "$npm_want" ]; then
    if command -v npm >/dev/null; then
      echo "installing the local-chain tools (npm ci)..." >&2
      npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2
      echo "$npm_want" > node_modules/.installed
    else
      echo "note: npm not found; tests that need a local Subtensor node will fail to start it" >&2
    fi
  fi
fi

# Headless Chromium (Debian's package) renders the HTML report in a browser test. Installed once;
# needs root and the Debian registry, as on this project's machines and CI.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the report's browser test (apt-get)..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
  }
fi

if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (first run or dependencies changed)..." >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch must be the CPU build. On machines that ship the CPU wheel locally, PIP_FIND_LINKS points at
# it; elsewhere PyTorch's CPU index provides it. Never let a resolver pick a CUDA build.
find_links=()
if [ -n "${PIP_FIND_LINKS:-}" ]; then
  find_links=(--find-links "$PIP_FIND_LINKS")
else
  find_links=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi
[ -x .venv/bin/uv ] || .venv/bin/pip install -q --disable-pip-version-check uv==0.13.9 2>/dev/null
UV_PYTHON_DOWNLOADS=never .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python \
  "${find_links[@]}" -r requirements.txt
UV_PYTHON_DOWNLOADS=never .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python \
  --no-deps -e .
.venv/bin/python - <<'PY'
import sys, torch
if not torch.__version__.endswith("+cpu"):
    sys.exit(f"expected the CPU build of torch, got {torch.__version__}")
PY
echo "$want" > "$stamp"
