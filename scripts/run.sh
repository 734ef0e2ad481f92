#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults — `yumaflow demo` on the simulated subnet, into ./data/
# (warehouse ./data/warehouse, MLflow ./data/mlflow.db, reports ./data/reports, chain state ./data/demo).
# A second `make run` continues the same simulated chain with a new challenger model.
set -euo pipefail
cd "$(dirname "$0")/.."
yumaflow demo "$@"
