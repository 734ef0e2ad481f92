"""A warehouse with everything the HTML report draws, filled from the simulated subnet sim:7.

Shared by tests/test_report.py and tests/test_report_browser.py: snapshots at b − 1 and b of three
epoch blocks b, the chain replay (variant "chain"), a baseline and a classic-Yuma what-if variant,
and a few miner scores, so every section of the report has a plot or a table.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows.consensus import recompute
from flows.consensus import store as store_chain_replay
from flows.ingest import store_snapshots
from flows.whatif import store as store_whatif
from flows.whatif import warehouse_inputs
from schemas.evaluation import SCORES
from tasks.consensus.whatif import Variant, run_variants
from tasks.simnet.chain import SimChain
from warehouse import Warehouse

CHAIN = "sim:7"
NETUID = 1
EPOCH_BLOCKS = [140, 160, 180]  # sim:7 runs an epoch every 20 blocks
START, END = 139, 180
PLOT_SECTIONS = 5  # distributions, stake vs dividends, consensus vs weights, what-if, scores (parity is a table)


def fill_sim_warehouse(root: Path) -> Warehouse:
    """A new warehouse at `root` holding netuid NETUID of sim:7 over blocks START..END, replayed and scored."""
    sim = SimChain.open(CHAIN)
    wh = Warehouse(root)
    blocks = sorted({b for e in EPOCH_BLOCKS for b in (e - 1, e)})
    store_snapshots(wh, [sim.snapshot(NETUID, b) for b in blocks], CHAIN)
    snapshots = {n: wh.read(n, netuid=NETUID) for n in ("subnets", "neurons", "weights", "bonds")}
    inputs, outputs = recompute(snapshots, END - 1)
    store_chain_replay(wh, inputs, outputs, "chain")
    whatif_inputs = warehouse_inputs(wh, NETUID, EPOCH_BLOCKS[0], EPOCH_BLOCKS[-1])
    variants = [Variant("baseline"), Variant("classic", {"yuma3_enabled": False})]
    store_whatif(wh, run_variants(whatif_inputs, variants), "")
    n = len(EPOCH_BLOCKS)
    scores = pl.DataFrame({
        "epoch_id": [f"e{b}" for b in EPOCH_BLOCKS for _ in range(3)],
        "netuid": [NETUID] * 3 * n, "block": [b for b in EPOCH_BLOCKS for _ in range(3)],
        "miner_uid": [10, 11, 12] * n, "hotkey": ["h10", "h11", "h12"] * n,
        "batch_score": [0.5, 0.3, 0.2] * n, "smoothed_score": [0.5, 0.3, 0.2, 0.52, 0.29, 0.19, 0.55, 0.27, 0.18],
    }, schema=SCORES.polars_schema())
    wh.write("scores", scores)
    return wh
