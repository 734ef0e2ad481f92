"""Backfill throughput against a real local Subtensor runtime (spec 218 under Chopsticks).

Starts the local chain (tests/support/localchain.py, needs `npm ci` and ../shared), seeds a subnet,
grows it by --blocks empty blocks, then times (1) one snapshot read straight through the client and
(2) whole backfills through the Prefect flow at concurrency 1 and 2, into fresh warehouses. Prints
blocks per second and warehouse bytes per snapshot.

    .venv/bin/python benchmarks/backfill.py --blocks 40
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=40, help="blocks to backfill (default 40)")
    args = parser.parse_args()
    for name, value in (("PREFECT_LOGGING_LEVEL", "WARNING"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
                        ("DO_NOT_TRACK", "true")):
        os.environ.setdefault(name, value)

    from prefect.testing.utilities import prefect_test_harness

    from flows.ingest import backfill_flow
    from tasks.chain import open_chain
    from tests.support.localchain import local_chain, rpc_over_http
    from tests.support.seed_subnet import seed_subnet
    from warehouse import Warehouse

    with local_chain() as chain, prefect_test_harness(server_startup_timeout=180):
        seed = seed_subnet(chain.url)
        for _ in range(args.blocks):
            rpc_over_http(chain.http_url, "dev_newBlock", [])
        netuid, first = seed["netuid"], seed["block_number"]
        last = first + args.blocks - 1
        print(f"local chain: spec {seed['spec_version']}, subnet {netuid} with {len(seed['neurons'])} uids, "
              f"blocks {first}..{last}; load average {os.getloadavg()[0]:.1f}")

        client = open_chain(chain.url)
        client.snapshot(netuid, first)  # metadata decoded once per client
        t0 = time.perf_counter()
        for block in range(first, first + 10):
            client.snapshot(netuid, block)
        per_snapshot = (time.perf_counter() - t0) / 10
        client.close()
        print(f"one snapshot (5 parts, pinned hash), warm client: {per_snapshot * 1000:.0f} ms "
              f"-> {1 / per_snapshot:.1f} blocks/s")

        for concurrency in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                result = backfill_flow(chain=chain.url, netuids=[netuid], start_block=first, end_block=last,
                                       warehouse=tmp, chunk_size=10, concurrency=concurrency, progress=False)
                elapsed = time.perf_counter() - t0
                stats = Warehouse(Path(tmp)).stats()
                size = int(stats["bytes"].sum())
                print(f"backfill flow, concurrency {concurrency}, chunks of 10: {result['blocks_read']} blocks "
                      f"in {elapsed:.1f} s = {result['blocks_read'] / elapsed:.1f} blocks/s; "
                      f"warehouse {size / result['blocks_read'] / 1024:.1f} KiB per snapshot "
                      f"(before compaction)")


if __name__ == "__main__":
    main()
