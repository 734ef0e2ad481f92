#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
yumaflow --help
