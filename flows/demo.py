"""Flow `demo`: the whole system on the simulated subnet, in a few minutes, with no configuration.

1. models: train an incumbent (first run only, it becomes champion) and a challenger with the train
   flow, registered in MLflow;
2. the subnet: `sim:SEED@STATE` (the default scenario: //Alice = our validator and four honest
   validators), joined by a weight copier, a tiny-stake validator and miners on 127.0.0.1 serving the
   champion, the challenger, two baselines and four hostile kinds (tasks/demo/cast.py);
3. `tempos` tempos: the copier and the tiny validator set weights, our validator runs the epoch flow
   (query, score, smooth, weights, projection, push), the chain runs its epoch, and the tempo's blocks
   are snapshotted into the warehouse by the backfill flow; then one tempo with commit-reveal on: our
   validator commits (timelocked), the chain reveals the row at the next epoch, the reveal is recorded;
4. every epoch recomputed with the engine (the consensus flow) — parity with the simulated chain's own
   results must be exact, or the demo fails;
5. what-if variants of the same range (classic vs Yuma3, liquid alpha, κ), the comparison flow (which
   moves the champion alias when the challenger wins), and the HTML report.

A second run continues the same simulated chain (the state file) for `tempos` more tempos, trains a
new challenger and compares it with the champion, as a miner would day after day. `fresh=True` starts
the chain over; the warehouse and MLflow store are kept (they are the user's), so a fresh chain goes
into a warehouse of its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl
from prefect import flow

from flows.compare import compare_flow
from flows.consensus import consensus_flow
from flows.epoch import epoch_flow
from flows.ingest import backfill_flow
from flows.report import report_flow
from flows.train import train_flow
from flows.whatif import whatif_flow
from tasks.demo import cast
from tasks.demo.models import CHALLENGER, INCUMBENT, champion_version, crown
from tasks.simnet.chain import SimChain
from warehouse import Warehouse

OUR_HOTKEY_URI = "//Alice"  # the default scenario's uid 0 (tasks/simnet/scenario.py)
TASK = "forecast"  # the task plug-in our validator runs (entry points yumaflow.tasks)
MODEL_NAME = "demo-forecaster"
# The simulated subnet runs Yuma3 without liquid alpha (tasks/simnet/chain.py); the variants ask what classic
# Yuma, liquid alpha (reading the current consensus, and, as a subnet's default Auto does at BondsPenalty
# 65535, the previous epoch's) and a higher κ would have paid over the same epochs.
VARIANTS = ["classic:yuma3_enabled=false",
            "liquid_alpha:liquid_alpha_enabled=true,alpha_low=45875,alpha_high=58982,"
            "liquid_alpha_consensus_mode=current",
            "liquid_alpha_previous:liquid_alpha_enabled=true,alpha_low=45875,alpha_high=58982,"
            "liquid_alpha_consensus_mode=previous",
            "kappa_0.6:kappa=39321"]
HISTORY_TEMPOS = 5  # tempos of the scenario's past backfilled on a first run, so the report has history


class DemoCheckFailed(RuntimeError):
    """The demo's own end-to-end check failed (e.g. recompute parity is not exact)."""


def _step(title: str) -> float:
    print(f"\n== {title} ==")
    return time.perf_counter()


def _train_models(tracking_uri: str, run_seed: int) -> dict[str, int]:
    """The versions the miners serve this run: {"champion": v, "challenger": v}."""
    incumbent = champion_version(tracking_uri, MODEL_NAME)
    if incumbent is None:
        first = train_flow(**INCUMBENT, seed=run_seed, tracking_uri=tracking_uri, registered_name=MODEL_NAME,
                           progress_bar=False)
        incumbent = int(first["version"])
        crown(tracking_uri, MODEL_NAME, incumbent)
        print(f"no champion yet: version {incumbent} ({INCUMBENT['model']}) is the incumbent champion")
    challenger = train_flow(**CHALLENGER, seed=run_seed + 1, tracking_uri=tracking_uri, registered_name=MODEL_NAME,
                            progress_bar=False)
    return {"champion": incumbent, "challenger": int(challenger["version"])}


def _start_miners(sim: SimChain, netuid: int, versions: dict[str, int], tracking_uri: str, timeout_s: float,
                  permits: dict) -> tuple[list, dict[str, int]]:
    """Start every demo miner's HTTP server on 127.0.0.1 and publish its axon; (servers, name → uid)."""
    from neurons.forecasters import SeasonalNaive, load_forecaster
    from neurons.hostile import create_hostile_app
    from neurons.miner import MinerServer, create_app

    def permitted() -> set[str]:
        return permits["hotkeys"]

    servers, uids = [], {}
    try:
        for i, role in enumerate(cast.MINERS):
            key = cast.miner_key(sim, i)
            if role.kind == "mlflow":
                forecaster = load_forecaster(f"mlflow:models:/{MODEL_NAME}/{versions[role.spec]}",
                                             tracking_uri=tracking_uri)
                app = create_app(key, forecaster, permitted)
            elif role.kind == "baseline":
                app = create_app(key, load_forecaster(role.spec), permitted)
            else:
                # the sleeper answers well after the validator's timeout; the answer copier answers
                # what the seasonal-naive miner answers, a little later
                delay = {"sleeper": timeout_s + 2.0, "copier": 0.3}.get(role.spec)
                options = {"delay_s": delay} if delay is not None else {}
                app = create_hostile_app(role.spec, key, SeasonalNaive(24), permitted, **options)
            server = MinerServer(app).start()
            servers.append(server)
            uids[role.name] = cast.join_miner(sim, netuid, i, server.port)
    except BaseException:
        from neurons.miner import stop_servers

        stop_servers(servers)
        raise
    return servers, uids


def _commit_reveal_epoch(source: str, netuid: int, tempo: int, warehouse: str, n_challenges: int, timeout_s: float,
                         deadline_s: float, seed: int) -> dict:
    """One tempo with commit-reveal on: our validator's epoch commits (timelocked) instead of setting, the
    chain reveals the row when the next epoch begins, and the validator records the reveal; then the
    subnet owner turns commit-reveal off again."""
    from flows.epoch import settle_reveals
    from tasks.chain.wallet import hotkey_from_uri

    sim = SimChain.open(source)
    sim.set_hyperparameter(netuid, "commit_reveal_enabled", True)
    sim.advance(sim.last_epoch_block(netuid) + tempo - sim.head_block())
    cast.advance_to_offset(sim, netuid, cast.OUR_VALIDATOR_OFFSET - 1)
    sim.close()
    result = epoch_flow(chain=source, netuid=netuid, warehouse=warehouse, hotkey_uri=OUR_HOTKEY_URI, push=True,
                        n_challenges=n_challenges, timeout_s=timeout_s, deadline_s=deadline_s, seed=seed, task=TASK)
    committed = result["submission"]
    sim = SimChain.open(source)
    sim.advance(sim.last_epoch_block(netuid) + tempo - sim.head_block())  # the reveal epoch begins here
    snap = sim.snapshot(netuid, sim.head_block())
    settled = settle_reveals(sim, Warehouse(Path(warehouse)), snap, hotkey_from_uri(OUR_HOTKEY_URI))
    sim.set_hyperparameter(netuid, "commit_reveal_enabled", False)
    sim.close()
    revealed = settled.row(0, named=True) if settled.height else committed
    print(f"commit-reveal tempo: our weights {committed.get('status')} ({committed.get('method')}) at block "
          f"{committed.get('included_block')}, drand round {committed.get('reveal_round')} (simulated beacon); "
          f"reveal {revealed.get('reveal_status')}: the chain holds our row from block "
          f"{revealed.get('revealed_block')}")
    return revealed


def _parity_is_exact(parity: pl.DataFrame) -> bool:
    return parity.height > 0 and bool((parity["equal"] == parity["uids"]).all())


# log_prints off: the demo narrates on stdout whatever the log level; its sub-flows log as usual
@flow(name="demo", log_prints=False)
def demo_flow(tempos: int = 4, seed: int = 7, netuid: int = 1, warehouse: str = "data/warehouse",
              tracking_uri: str = "sqlite:///data/mlflow.db", reports_dir: str = "data/reports",
              state_file: str = "data/demo/sim.json", fresh: bool = False, n_challenges: int = 8,
              timeout_s: float = 2.0, deadline_s: float | None = None) -> dict:
    """Run the demo (module docstring); returns where everything is and the figures."""
    from neurons.miner import stop_servers
    from tasks.training.compare import record_deployment

    if tempos < 1:
        raise ValueError(f"tempos must be at least 1, got {tempos}")
    deadline_s = timeout_s + 1.0 if deadline_s is None else deadline_s
    started = time.perf_counter()
    state = Path(state_file)
    if fresh and state.exists():
        state.unlink()
    first_run = not state.exists()
    source = f"sim:{seed}@{state}"
    wh = Warehouse(Path(warehouse))
    figures: dict[str, float] = {}

    t = _step("1. models: train flow, registered in MLflow")
    sim = SimChain.open(source)  # plays the default scenario on a first run (~2 s)
    run_seed = sim.head_block()  # a new challenger each run
    versions = _train_models(tracking_uri, run_seed)
    print(f"champion version {versions['champion']}, challenger version {versions['challenger']} of "
          f"{MODEL_NAME}")
    figures["train_s"] = time.perf_counter() - t

    t = _step(f"2. the subnet {source}: validators and miners on 127.0.0.1")
    roles = cast.join_validators(sim, netuid)
    permits = {"hotkeys": cast.permitted_validators(sim, netuid)}
    servers, miner_uids = _start_miners(sim, netuid, versions, tracking_uri, timeout_s, permits)
    try:
        for i, role in enumerate(cast.MINERS):  # which miner serves which version, for the comparison
            if role.kind == "mlflow":
                record_deployment(wh, netuid, cast.miner_key(sim, i).ss58_address, MODEL_NAME, versions[role.spec],
                                  sim.head_block())
        print(f"weight copier uid {roles['copier']}, tiny validator uid {roles['tiny']} (stake "
              f"{cast.TINY_ALPHA_RAO / 1e9:.0f} α); miners: "
              + ", ".join(f"{name} uid {uid}" for name, uid in miner_uids.items()))
        tempo = int(sim.snapshot(netuid, sim.head_block(), parts=("subnets",)).subnets["tempo"][0])
        first_block = max(1, sim.head_block() - HISTORY_TEMPOS * tempo) if first_run else sim.head_block() + 1
        sim.close()
        backfilled_to = first_block - 1
        if first_run:  # the scenario's recent past, so the report and the recompute have history
            head = sim.head_block()
            backfill_flow(chain=source, netuids=[netuid], start_block=first_block, end_block=head,
                          warehouse=warehouse, chunk_size=25, progress=True)
            backfilled_to = head
        figures["setup_s"] = time.perf_counter() - t

        t = _step(f"3. {tempos} tempo(s): copier, tiny validator, our validator's epoch flow, chain epoch, "
                  "snapshots")
        submissions, tempos_start = [], backfilled_to + 1
        for k in range(tempos):
            sim = SimChain.open(source)
            last_epoch = sim.last_epoch_block(netuid)
            sim.advance(last_epoch + tempo - sim.head_block())  # the chain's epoch runs in this block
            epoch_block = sim.last_epoch_block(netuid)
            cast.advance_to_offset(sim, netuid, cast.COPIER_OFFSET - 1)
            copied = cast.act(sim, netuid, "copier")
            cast.advance_to_offset(sim, netuid, cast.TINY_OFFSET - 1)
            tiny = cast.act(sim, netuid, "tiny")
            cast.advance_to_offset(sim, netuid, cast.OUR_VALIDATOR_OFFSET - 1)
            permits["hotkeys"] = cast.permitted_validators(sim, netuid)
            sim.close()
            result = epoch_flow(chain=source, netuid=netuid, warehouse=warehouse, hotkey_uri=OUR_HOTKEY_URI,
                                push=True, n_challenges=n_challenges, timeout_s=timeout_s, deadline_s=deadline_s,
                                seed=seed, task=TASK)
            submission = result["submission"]
            submissions.append(submission)
            sim = SimChain.open(source)
            head = sim.head_block()
            sim.close()
            backfill_flow(chain=source, netuids=[netuid], start_block=backfilled_to + 1, end_block=head,
                          warehouse=warehouse, chunk_size=25, progress=False)
            backfilled_to = head
            ok = result["scores"].filter(pl.col("batch_score") > 0).height
            print(f"tempo {k + 1} (task {TASK}): chain epoch at block {epoch_block}; copier set weights: {copied}; "
                  f"tiny validator "
                  f"set weights: {tiny}; our epoch {result['epoch_id']}: {ok} of {result['scores'].height} miners "
                  f"scored above 0, weights {submission.get('status')} at block {submission.get('block')}")
        commit_reveal = _commit_reveal_epoch(source, netuid, tempo, warehouse, n_challenges, timeout_s, deadline_s,
                                             seed)
        submissions.append(commit_reveal)
        # one more chain epoch, so the last pushed weights are in an epoch the warehouse holds
        sim = SimChain.open(source)
        sim.advance(sim.last_epoch_block(netuid) + tempo + 1 - sim.head_block())
        last_block = sim.head_block()
        sim.close()
        backfill_flow(chain=source, netuids=[netuid], start_block=backfilled_to + 1, end_block=last_block,
                      warehouse=warehouse, chunk_size=25, progress=False)
        figures["tempos_s"] = time.perf_counter() - t
    finally:
        stop_servers(servers)

    t = _step(f"4. every epoch in blocks {first_block}..{last_block} recomputed by the engine (consensus flow)")
    recomputed = consensus_flow(netuid=netuid, start_block=first_block, end_block=last_block, warehouse=warehouse)
    parity = recomputed["parity"]
    print(parity)
    if not _parity_is_exact(parity):
        raise DemoCheckFailed(f"recompute parity is not exact over blocks {first_block}..{last_block}: {parity}")
    print(f"{recomputed['epochs']} epoch inputs recomputed (one per stored block); {recomputed['compared_epochs']} "
          "epochs the chain ran compared with its results: every uid equal on every column")
    figures["consensus_s"] = time.perf_counter() - t

    t = _step("5. what-if: the same epochs under other hyperparameters")
    whatif = whatif_flow(warehouse=warehouse, variants=VARIANTS, netuid=netuid, start_block=first_block,
                         end_block=last_block, copier_uid=roles["copier"], tiny_uid=roles["tiny"])
    whatif_s = time.perf_counter() - t
    scenario_epochs = whatif["epochs"] * len(whatif["variants"])
    figures["whatif_scenario_epochs_per_s"] = scenario_epochs / whatif_s
    print(whatif["comparison"].drop("validator_emission_rao", strict=False))
    print(f"{scenario_epochs} scenario-epochs ({whatif['epochs']} epochs × {len(whatif['variants'])} variants) in "
          f"{whatif_s:.2f} s: {figures['whatif_scenario_epochs_per_s']:.1f} scenario-epochs/s (flow included)")

    t = _step("6. compare: champion vs challenger, offline score and on-chain incentive")
    # this run's tempos: the validator's challenges and the miners' incentive while they served these versions
    comparison = compare_flow(model_name=MODEL_NAME, tracking_uri=tracking_uri, warehouse=warehouse, netuid=netuid,
                              block_start=tempos_start, block_end=last_block)
    figures["compare_s"] = time.perf_counter() - t

    t = _step("7. the report")
    report = report_flow(warehouse=warehouse, netuid=netuid, start_block=first_block, end_block=last_block,
                         reports_dir=reports_dir)
    figures["report_s"] = time.perf_counter() - t
    figures["total_s"] = time.perf_counter() - started
    return {"source": source, "warehouse": str(Path(warehouse).resolve()), "tracking_uri": tracking_uri,
            "report": report, "first_block": first_block, "last_block": last_block, "roles": roles,
            "miner_uids": miner_uids, "versions": versions, "submissions": submissions,
            "parity": parity, "decision": comparison.decision, "promoted": comparison.promoted,
            "whatif_variants": whatif["variants"], "figures": figures, "run_id": comparison.run_id,
            "prefect_home": os.environ.get("PREFECT_HOME")}
