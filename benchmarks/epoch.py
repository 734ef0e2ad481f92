"""The validator epoch's wall time with 64 and 256 miners: query phase and scoring phase separately.

Miners are real HTTP servers on 127.0.0.1 (seasonal-naive baselines with different periods, so no two
answer alike), registered with axons on the simulated subnet; the validator is //Alice. Each phase is
the same task code the `epoch` flow runs. A quarter of the miners can be made to stall past the
timeout with --stalled.

    .venv/bin/python benchmarks/epoch.py --miners 64,256 --challenges 16
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", default="64,256")
    parser.add_argument("--challenges", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--stalled", action="store_true", help="a quarter of the miners sleep past the timeout")
    args = parser.parse_args()

    import polars as pl
    from substrateinterface import Keypair

    from neurons.forecasters import SeasonalNaive
    from neurons.hostile import create_hostile_app
    from neurons.miner import MinerServer, create_app, stop_servers
    from tasks.evaluation.challenges import make_challenges
    from tasks.evaluation.query import query_miners
    from tasks.evaluation.scoring import score_miners
    from tasks.evaluation.series import generate_series
    from tasks.evaluation.validate import validate_forecasts
    from tasks.simnet.chain import SimChain

    alice = Keypair.create_from_uri("//Alice")
    series = generate_series(32, 2048, seed=0)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.challenges} challenges, context 96, horizon 24")
    for n in [int(x) for x in args.miners.split(",")]:
        sim = SimChain.open("sim:5", scenario_tempos=1)
        sim.set_hyperparameter(1, "max_allowed_uids", n + 128)
        permitted = {alice.ss58_address}

        def permits(allowed=frozenset(permitted)):
            return set(allowed)

        servers = []
        try:
            for i in range(n):
                key = sim.keypair("benchminer", i)
                if args.stalled and i % 4 == 0:
                    app = create_hostile_app("sleeper", key, SeasonalNaive(24), permits,
                                             delay_s=args.timeout + 30)
                else:
                    app = create_app(key, SeasonalNaive(12 + i % 24 + i // 24), permits)
                servers.append(MinerServer(app).start())
                sim.register(1, key.ss58_address, sim.keypair("benchminer", i, coldkey=True).ss58_address)
                sim.serve_axon(1, "127.0.0.1", servers[-1].port, key)
            snap = sim.snapshot(1, sim.head_block())
            challenges = make_challenges(series, f"bench-{n}", 1, snap.block, args.challenges, 96, 24, 0)
            t0 = time.perf_counter()
            responses = query_miners(snap.neurons, challenges, alice, timeout_s=args.timeout,
                                     deadline_s=args.timeout + 1)
            t_query = time.perf_counter() - t0
            t0 = time.perf_counter()
            batch = validate_forecasts(responses, challenges)
            scores = score_miners(batch, challenges)
            t_score = time.perf_counter() - t0
            statuses = dict(responses.group_by("status").agg(pl.col("miner_uid").n_unique()).iter_rows())
            forecasts = responses.filter(pl.col("status") == "ok").height
            print(f"{n:>4} miners: query phase {t_query:6.2f} s, scoring phase {t_score * 1000:7.1f} ms "
                  f"({forecasts / t_score:,.0f} forecasts/s incl. validation); miners by status {statuses}; "
                  f"scored {scores.height}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")
        finally:
            stop_servers(servers)


if __name__ == "__main__":
    main()
