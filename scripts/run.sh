#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults (the simulated subnet), into ./data/.
# Until `yumaflow demo` exists it shows the CLI, backfills the simulated subnet's history into the
# warehouse and recomputes every epoch in it with the consensus engine, printing the parity table.
set -euo pipefail
cd "$(dirname "$0")/.."
yumaflow --help
echo
echo "== backfill of the simulated subnet (sim:7) into ./data/warehouse =="
yumaflow backfill --chain sim:7 --netuid 1 --start-block 99 --end-block 200 --chunk-size 25
echo
echo "== the epochs recomputed from the warehouse, against the simulation's own results =="
yumaflow consensus --netuid 1 --start-block 100 --end-block 200
echo
echo "The warehouse: data/warehouse/catalog.duckdb (a view per table: neurons, weights, epoch_results, …)"
