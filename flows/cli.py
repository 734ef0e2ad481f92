"""The `yumaflow` command: a thin layer over flows and tasks.

Heavy libraries (torch, mlflow, prefect, polars) are imported inside each command, so `yumaflow --help`
answers at once. Orchestrated work starts Prefect flows; single computations (`consensus`) call the
library directly and never wait for Prefect's start-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
import traceback
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _is_expected_failure(exc: Exception) -> bool:
    """Failures of the world outside (node, network, storage) rather than bugs of ours."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ChainError", "WarehouseError", "WarehouseLockedError", "OSError",
                         "WebSocketException", "SubstrateRequestException"})


def _fmt(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="TOML settings file (default: $YUMAFLOW_CONFIG, else ./yumaflow.toml if present)")


def _add_runner_options(p: argparse.ArgumentParser) -> None:
    """--concurrency, --task-runner, --dask-workers: the options of every chunked command."""
    p.add_argument("--concurrency", type=_positive, metavar="N",
                   help="chunks at once (default 2 on threads, the worker threads of a Dask cluster; 1 when a "
                        "backfill records)")
    p.add_argument("--task-runner", metavar="RUNNER",
                   help="where the chunks run: threads (Prefect's thread pool here, the default), dask (a local "
                        "Dask cluster of --dask-workers processes), tcp://HOST:PORT or dask://HOST:PORT (an "
                        "existing Dask scheduler); results are the same [env YUMAFLOW_TASK_RUNNER]")
    p.add_argument("--dask-workers", type=_positive, metavar="N",
                   help="worker processes of the local Dask cluster (default 2) [env YUMAFLOW_DASK_WORKERS]")


def _run_chunked(flow, settings, **parameters):
    """Run a chunked flow (backfill, consensus, whatif) on the task runner of the settings."""
    from flows.runners import run_flow

    return run_flow(flow, task_runner=settings.task_runner, dask_workers=settings.dask_workers, **parameters)


def cmd_consensus(args: argparse.Namespace) -> int:
    files_mode = args.inputs is not None or args.output is not None
    warehouse_mode = args.netuid is not None
    if files_mode == warehouse_mode or (files_mode and not (args.inputs and args.output)):
        raise ValueError("give either --inputs IN --output OUT (files) or --netuid N --start-block A "
                         "--end-block B (the warehouse)")
    if warehouse_mode:
        return _consensus_from_warehouse(args)
    from tasks.consensus import run_consensus_files

    started = time.perf_counter()
    out = run_consensus_files(args.inputs, args.output, threads=args.threads)
    elapsed = time.perf_counter() - started
    n_epochs = out.neurons.select(["netuid", "mechid", "block"]).unique().height
    print(f"recomputed {n_epochs} epoch(s), {out.neurons.height} neuron rows, {out.bonds.height} bond edges "
          f"in {elapsed:.2f} s")
    print(f"wrote {args.output / 'neurons.parquet'}")
    print(f"wrote {args.output / 'bonds.parquet'}")
    return 0


def _consensus_from_warehouse(args: argparse.Namespace) -> int:
    from flows.settings import load_settings

    if args.start_block is None or args.end_block is None:
        raise ValueError("--netuid needs --start-block and --end-block")
    _check_range(args.start_block, args.end_block)
    settings = load_settings(args.config, warehouse=args.warehouse, task_runner=args.task_runner,
                             dask_workers=args.dask_workers)
    from flows.consensus import consensus_flow

    result = _run_chunked(consensus_flow, settings, netuid=args.netuid, start_block=args.start_block,
                          end_block=args.end_block, warehouse=str(settings.warehouse),
                          chunk_epochs=args.chunk_epochs, concurrency=args.concurrency)
    print(f"recomputed {result['epochs']} epoch(s) of netuid {args.netuid} into epoch_results (variant chain); "
          f"{result['compared_epochs']} had the chain's own outputs to compare with")
    for row in result["parity"].iter_rows(named=True):
        print(f"  {row['column']:<18} {row['equal']}/{row['uids']} uids equal, max |diff| {row['max_abs_diff']}")
    return 0


def _netuids(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected netuids like 1 or 1,3,23; got {text!r}") from None
    if not values or any(not 0 <= v < 65536 for v in values):
        raise argparse.ArgumentTypeError(f"netuids must be integers in 0..65535; got {text!r}")
    return values


def _block(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a block number; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a block number is not negative; got {value}")
    return value


def _positive(text: str) -> int:
    value = _block(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1; got {value}")
    return value


def _check_range(start: int | None, end: int | None) -> None:
    if start is not None and end is not None and start > end:
        raise ValueError(f"--start-block {start} is after --end-block {end}")


def _check_blocks_exist(source: str, *blocks: int | None) -> None:
    """Refuse, before any work starts, blocks past the chain's finalized head (a recording that does not
    hold the head is not asked: its replay names any block it lacks)."""
    from tasks.chain import RecordingMissError, open_chain

    wanted = [b for b in blocks if b is not None]
    if not wanted:
        return
    with open_chain(source) as chain:
        try:
            head = chain.head_block(finalized=True)
        except RecordingMissError:
            return
    past = max(wanted)
    if past > head:
        raise ValueError(f"block {past} is past the finalized head of {source} (block {head}); "
                         f"choose blocks up to {head}")


def _number(text: str, *, positive: bool, what: str) -> float:
    """A finite float from the command line: > 0 when `positive`, else >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
    if value == float("inf") or not (value > 0 if positive else value >= 0):
        raise argparse.ArgumentTypeError(f"expected {'a positive' if positive else 'a finite, non-negative'} "
                                         f"{what}; got {text!r}")
    return value


def _seconds(text: str) -> float:
    return _number(text, positive=True, what="number of seconds")


def _non_negative(text: str) -> float:
    return _number(text, positive=False, what="number")


def _chain_settings(args: argparse.Namespace):
    from flows.settings import load_settings
    from tasks.chain import check_source

    settings = load_settings(args.config, warehouse=args.warehouse, chain=args.chain)
    check_source(settings.chain)
    return settings


def cmd_snapshot(args: argparse.Namespace) -> int:
    settings = _chain_settings(args)
    _check_blocks_exist(settings.chain, args.block)
    from flows.ingest import snapshot_flow

    result = snapshot_flow(chain=settings.chain, netuids=args.netuid, warehouse=str(settings.warehouse),
                           block=args.block, record=str(args.record) if args.record else None)
    for netuid, rows in result["rows"].items():
        print(f"netuid {netuid} at block {result['block']}: {rows} rows into {settings.warehouse}")
    if args.record:
        print(f"recorded the chain traffic to {args.record} (replay it with --chain replay:{args.record})")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from flows.settings import load_settings

    settings = load_settings(args.config, warehouse=args.warehouse, chain=args.chain, task_runner=args.task_runner,
                             dask_workers=args.dask_workers)
    from tasks.chain import check_source

    check_source(settings.chain)
    _check_range(args.start_block, args.end_block)
    _check_blocks_exist(settings.chain, args.end_block)
    from flows.ingest import backfill_flow

    result = _run_chunked(backfill_flow, settings, chain=settings.chain, netuids=args.netuid,
                          start_block=args.start_block, end_block=args.end_block, warehouse=str(settings.warehouse),
                          step=args.step, chunk_size=args.chunk_size, concurrency=args.concurrency,
                          record=str(args.record) if args.record else None)
    print(f"read {result['blocks_read']} block(s) in {result['chunks']} chunk(s), {result['rows']} rows; "
          f"{result['blocks_already_complete']} block(s) were already complete")
    return 0


def cmd_epoch(args: argparse.Namespace) -> int:
    settings = _chain_settings(args)
    from flows.epoch import epoch_flow, refuse_secret_uri

    refuse_secret_uri(args.hotkey_uri)  # before the flow run exists: Prefect would store the value
    result = epoch_flow(chain=settings.chain, netuid=args.netuid[0], warehouse=str(settings.warehouse),
                        hotkey_uri=args.hotkey_uri, wallet=args.wallet, hotkey=args.hotkey,
                        wallet_path=str(args.wallet_path) if args.wallet_path else None, push=args.push,
                        n_challenges=args.challenges, timeout_s=args.timeout, deadline_s=args.deadline,
                        series_path=str(args.series) if args.series else None, seed=args.seed,
                        version_key=args.version_key, task=args.task, context_len=args.context,
                        horizon=args.horizon)
    responses, scores, submission = result["responses"], result["scores"], result["submission"]
    answered = responses.filter(responses["status"] == "ok")["miner_uid"].n_unique() if responses.height else 0
    print(f"epoch {result['epoch_id']} at block {result['block']}: {answered} miner(s) answered, "
          f"{scores.height} scored")
    print(f"weights: {submission['status']} — {submission.get('detail') or ''}")
    projection = submission.get("projection")
    if projection:
        print(f"projected validator trust {projection['validator_trust']}, dividends {projection['dividends']} "
              f"(u16), emission {projection['emission']} rao")
    return 0


def cmd_miner_serve(args: argparse.Namespace) -> int:
    settings = _chain_settings(args)
    from neurons.forecasters import ForecasterHolder
    from neurons.miner import permits_from_chain, publish_axon, serve_forever
    from tasks.chain import open_chain
    from tasks.chain.wallet import load_hotkey

    hotkey = load_hotkey(hotkey_uri=args.hotkey_uri, wallet_name=args.wallet, hotkey_name=args.hotkey,
                         wallet_path=args.wallet_path)
    netuid = args.netuid[0]
    from tasks.evaluation.plugin import load_task

    plugin = load_task(args.task)
    forecaster = ForecasterHolder(args.model)
    permits = permits_from_chain(open_chain(settings.chain), netuid, refresh_s=args.permit_refresh)
    if args.publish_ip:
        writer = open_chain(settings.chain)
        try:
            result = publish_axon(writer, netuid, args.publish_ip, args.port, hotkey.keypair)
        finally:
            writer.close()
        if result is not None:
            print(f"serve_axon {args.publish_ip}:{args.port}: {'ok' if result.ok else result.error}")
    print(f"miner {hotkey.ss58_address} serving {args.model} for task {plugin.name} at "
          f"{args.host}:{args.port}{plugin.path} (Ctrl-C stops)")
    try:
        serve_forever(hotkey.keypair, forecaster, permits, host=args.host, port=args.port,
                      reload_interval_s=args.reload_interval, path=plugin.path)
    finally:
        permits.stop()
    return 0


def _mlflow_settings(args: argparse.Namespace):
    from flows.settings import load_settings

    return load_settings(args.config, warehouse=getattr(args, "warehouse", None),
                         mlflow_tracking_uri=args.tracking_uri)


def cmd_train(args: argparse.Namespace) -> int:
    settings = _mlflow_settings(args)
    from flows.train import train_flow

    result = train_flow(model=args.model, series_path=str(args.series) if args.series else None, seed=args.seed,
                        context_len=args.context, horizon=args.horizon, max_epochs=args.max_epochs,
                        tracking_uri=settings.mlflow_tracking_uri, registered_name=args.name,
                        batch_size=args.batch_size, progress_bar=None)
    print(f"trained {result['model']} for {result['epochs']} epoch(s): val loss {result['val_loss']:.5f} "
          f"(seasonal naive {result['baseline_val_loss']:.5f})")
    print(f"registered {result['registered_name']} version {result['version']} with alias challenger "
          f"(run {result['run_id']}) in {settings.mlflow_tracking_uri}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    settings = _mlflow_settings(args)
    from flows.compare import compare_flow

    comparison = compare_flow(model_name=args.name, refs=args.refs or None, margin=args.margin,
                              tracking_uri=settings.mlflow_tracking_uri, warehouse=str(settings.warehouse),
                              netuid=args.netuid, seed=args.seed)
    for row in comparison.table.iter_rows(named=True):
        incentive = row.get("mean_incentive_u16")
        print(f"version {row['model_version']:>3} ({row['refs']}): mean score {row['mean_score']:.6f}, "
              f"mean scaled error {row['mean_scaled_error']:.4f}"
              + (f", mean incentive {incentive:.1f} u16" if incentive is not None else ""))
    print(comparison.decision.reason)
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from flows.settings import load_settings

    settings = load_settings(args.config, warehouse=args.warehouse, task_runner=args.task_runner,
                             dask_workers=args.dask_workers)
    if (args.scenario is None) == (args.netuid is None):
        raise ValueError("give either --scenario NAME (synthetic) or --netuid N --start-block A --end-block B "
                         "(the warehouse)")
    _check_range(args.start_block, args.end_block)
    from flows.whatif import whatif_flow

    result = _run_chunked(whatif_flow, settings, warehouse=str(settings.warehouse), variants=args.variant or [],
                          netuid=args.netuid, start_block=args.start_block, end_block=args.end_block,
                          scenario=args.scenario, epochs=args.epochs, copier_uid=args.copier_uid,
                          tiny_uid=args.tiny_uid, variants_per_chunk=args.variants_per_chunk,
                          concurrency=args.concurrency)
    print(f"recomputed {result['epochs']} epoch(s) under {', '.join(result['variants'])}; stored as epoch_results")
    comparison = result["comparison"]
    for row in comparison.drop("validator_emission_rao", strict=False).iter_rows(named=True):
        print("  " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from flows.settings import load_settings

    settings = load_settings(args.config, warehouse=args.warehouse, reports_dir=args.reports_dir)
    _check_range(args.start_block, args.end_block)
    from flows.report import report_flow

    path = report_flow(warehouse=str(settings.warehouse), netuid=args.netuid, start_block=args.start_block,
                       end_block=args.end_block, reports_dir=str(settings.reports_dir))
    print(f"wrote {path} (self-contained: open it in any browser, no network needed)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.settings import load_settings

    settings = load_settings(args.config, warehouse=args.warehouse, mlflow_tracking_uri=args.tracking_uri,
                             reports_dir=args.reports_dir)
    from flows.demo import demo_flow

    result = demo_flow(tempos=args.tempos, seed=args.seed, netuid=1, warehouse=str(settings.warehouse),
                       tracking_uri=settings.mlflow_tracking_uri, reports_dir=str(settings.reports_dir),
                       state_file=str(args.state), fresh=args.fresh, timeout_s=args.timeout)
    figures, decision = result["figures"], result["decision"]
    catalog = Path(result["warehouse"]) / "catalog.duckdb"
    store = settings.mlflow_tracking_uri
    print(f"""
== done in {figures['total_s']:.0f} s (train {figures['train_s']:.0f} s, tempos {figures['tempos_s']:.0f} s, \
recompute {figures['consensus_s']:.1f} s, what-if {figures['whatif_scenario_epochs_per_s']:.1f} scenario-epochs/s, \
report {figures['report_s']:.1f} s) ==

Champion: {decision.reason}; alias moved: {result['promoted']}.
Recompute parity: exact on every column over blocks {result['first_block']}..{result['last_block']}.

Where everything is:
  simulated chain   {result['source']}  (continue it: run `yumaflow demo` again; start over: --fresh)
  warehouse         {result['warehouse']}
      query it:     python -c "import duckdb; print(duckdb.connect('{catalog}', read_only=True)\\
.sql('select block, uid, incentive, dividends from neurons order by block desc, uid limit 10'))"
      or, with the duckdb CLI: duckdb -readonly {catalog} "select * from epoch_results limit 5"
  MLflow            {store}  (runs, the registered model {decision.model_name} and its aliases)
      browse it:    mlflow ui --backend-store-uri {store}
  report            {result['report']}
  Prefect runs      prefect flow-run ls   (the flows `demo`, `train`, `epoch`, `backfill`, `consensus`,
                    `whatif`, `compare`, `report`; PREFECT_HOME={result['prefect_home'] or '~/.prefect'});
                    for the UI: prefect server start""")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from flows.settings import load_settings
    from tasks.chain import open_chain
    from tasks.chain.doctor import diagnose, render

    settings = load_settings(args.config, chain=args.chain)
    from tasks.chain import check_source

    check_source(settings.chain)
    netuid = None
    if args.netuid is not None:
        (netuid,) = args.netuid if len(args.netuid) == 1 else (None,) * 2  # one subnet at a time
    with open_chain(settings.chain) as chain:
        report = diagnose(chain, netuid)
    print(render(report))
    return EXIT_FAILED if report.failed else 0


def cmd_config(args: argparse.Namespace) -> int:
    from flows.settings import Settings, load_settings

    settings = load_settings(args.config)
    for name, field in Settings.model_fields.items():
        print(f"{name:<22} {getattr(settings, name)!s:<32} YUMAFLOW_{name.upper():<22} {field.description}")
    return 0


def _add_chain_options(p: argparse.ArgumentParser, record: bool = True) -> None:
    p.add_argument("--chain", metavar="SRC",
                   help="sim[:SEED][@STATE_FILE] (the simulated subnet, the default), ws://HOST:PORT or wss://… "
                        "(a Subtensor node), or replay:PATH (a recording) [env YUMAFLOW_CHAIN]")
    p.add_argument("--netuid", type=_netuids, required=True, metavar="N[,M…]", help="subnet(s) to read")
    p.add_argument("--warehouse", type=Path, metavar="DIR",
                   help="warehouse directory (default ./data/warehouse) [env YUMAFLOW_WAREHOUSE]")
    if record:
        p.add_argument("--record", type=Path, metavar="PATH",
                       help="record every JSON-RPC request and response to PATH, for replay:PATH later")
    _add_common(p)


def _add_task_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default=os.environ.get("YUMAFLOW_TASK", "forecast"), metavar="NAME",
                   help="the task plug-in (entry-point group yumaflow.tasks; built in: forecast, price) "
                        "[env YUMAFLOW_TASK]")


def _add_hotkey_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hotkey-uri", metavar="URI", help="a development key path such as //Alice")
    p.add_argument("--wallet", metavar="NAME", help="bittensor wallet name (its hotkey keyfile signs)")
    p.add_argument("--hotkey", default="default", metavar="NAME", help="hotkey name in the wallet (default: default)")
    p.add_argument("--wallet-path", type=Path, metavar="DIR", help="wallets directory (default ~/.bittensor/wallets)")


class _OneLineErrors:
    """A bad option is one line on stderr naming it (`--help` shows the usage), exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _RootParser(_OneLineErrors, argparse.ArgumentParser):
    pass


class _CommandParser(_OneLineErrors, argparse.ArgumentParser):
    """A subcommand's parser: descriptions and examples keep their line breaks."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _RootParser(
        prog="yumaflow",
        description=_fmt("""
            yumaflow runs the work around a Bittensor subnet as recorded, resumable pipelines:
            exact Yuma Consensus recomputation, a DuckDB/Parquet warehouse of chain history,
            the validator's evaluation epoch, and miner models tracked in MLflow.

            Settings come from options, environment variables YUMAFLOW_<NAME> (e.g. YUMAFLOW_WAREHOUSE)
            and an optional TOML file, in that order of precedence.
        """),
        epilog=_fmt("""
            Run `yumaflow COMMAND --help` for a command's options and examples.
        """),
    )
    parser.add_argument("--debug", action="store_true",
                        help="on failure, print the traceback too (default: one line naming what went wrong) "
                             "[env YUMAFLOW_DEBUG=1]")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)

    p = sub.add_parser(
        "consensus",
        help="recompute Yuma Consensus epochs from Parquet files, bit-exact with the chain",
        description=_fmt("""
            Recompute one or many epochs exactly as the chain's epoch (sparse path) does, from the
            Parquet file contract:

              IN/epochs.parquet   one row per epoch (netuid, mechid, block) with its hyperparameters
              IN/neurons.parquet  one row per uid: stakes (rao), last_update, registration, stored permit
              IN/weights.parquet  one row per stored weight edge (u16)
              IN/bonds.parquet    one row per stored bond edge (u16)

            and writes OUT/neurons.parquet (stake_weight, active, validator_permit, consensus, incentive,
            dividends, validator_trust as u16; server/validator/combined emission in rao) and
            OUT/bonds.parquet (the new bonds as the chain stores them). Inputs are validated first;
            OUT is written only if the whole batch succeeds.

            With --netuid/--start-block/--end-block instead, the epochs are recomputed from the
            warehouse's snapshots (a snapshot at block P is the input of the epoch at P + 1), stored
            as epoch_results with variant "chain", and compared with the chain's own outputs wherever
            the warehouse holds the snapshot of the block the chain ran that epoch in.
        """),
        epilog=_fmt("""
            examples:
              yumaflow consensus --inputs data/epochs_in --output data/epochs_out
              yumaflow consensus --netuid 1 --start-block 4000000 --end-block 4007200
              yumaflow consensus --netuid 1 --start-block 4000000 --end-block 4007200 \\
                  --chunk-epochs 50 --task-runner dask --dask-workers 2
        """),
    )
    p.add_argument("--inputs", type=Path, metavar="IN", help="directory with the four input files")
    p.add_argument("--output", type=Path, metavar="OUT", help="directory to write the results to")
    p.add_argument("--threads", type=_positive, default=os.cpu_count() or 1, metavar="N",
                   help="files mode: threads for the compiled edge steps, chunks of epochs side by side; the "
                        "results are the same for any N (default: this machine's cores, %(default)s)")
    p.add_argument("--netuid", type=int, metavar="N", help="recompute this subnet from the warehouse")
    p.add_argument("--start-block", type=_block, metavar="A", help="first epoch block (warehouse mode)")
    p.add_argument("--end-block", type=_block, metavar="B", help="last epoch block, inclusive (warehouse mode)")
    p.add_argument("--warehouse", type=Path, metavar="DIR",
                   help="warehouse directory (default ./data/warehouse) [env YUMAFLOW_WAREHOUSE]")
    p.add_argument("--chunk-epochs", type=_positive, default=100, metavar="N",
                   help="warehouse mode: snapshots recomputed per chunk, the unit of memory and of work sent to "
                        "a worker (default 100)")
    _add_runner_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_consensus)

    p = sub.add_parser(
        "doctor",
        help="check that a node's runtime offers everything yumaflow reads and sends",
        description=_fmt("""
            Read the runtime at the node's best head from its own metadata and check every runtime API
            (field by field, by name), storage item, call and signed extension yumaflow uses: ok,
            retyped, missing, or absent (read only where present; the warehouse column stays null).
            A signed extrinsic is built with every declared signed extension and decoded back; nothing
            is sent. With --netuid, also the subnet's epoch and commit-reveal settings and whether a
            weight push would be a set_weights or a commit. Exits 1 when something yumaflow needs is
            missing or retyped.
        """),
        epilog=_fmt("""
            examples:
              yumaflow doctor --chain wss://entrypoint-finney.opentensor.ai:443 --netuid 1
              yumaflow doctor --chain ws://127.0.0.1:9944
              yumaflow doctor --chain replay:session.json
        """),
    )
    p.add_argument("--chain", metavar="SRC", help="ws://…, wss://…, replay:PATH or sim… [env YUMAFLOW_CHAIN]")
    p.add_argument("--netuid", type=_netuids, metavar="N", help="also show this subnet's settings and push method")
    _add_common(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "snapshot",
        help="read a subnet's metagraph, weights, bonds and hyperparameters at one block into the warehouse",
        description=_fmt("""
            Read subnet(s) at one block (default: the finalized head) at one pinned block hash:
            neurons, weights and bonds of every mechanism, hyperparameters, TaoWeight, the block's
            hash, runtime spec version and timestamp. Writes the warehouse tables blocks, subnets,
            neurons, weights and bonds, and marks the block complete in ingest_log.
        """),
        epilog=_fmt("""
            examples:
              yumaflow snapshot --chain wss://archive.example:443 --netuid 1
              yumaflow snapshot --chain ws://127.0.0.1:9944 --netuid 1,3 --block 4200 --record session.json
              yumaflow snapshot --chain replay:session.json --netuid 1 --block 4200
        """),
    )
    _add_chain_options(p)
    p.add_argument("--block", type=_block, help="block number (default: the finalized head)")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser(
        "backfill",
        help="snapshot a block range into the warehouse: chunked, concurrent, retried, resumable",
        description=_fmt("""
            Snapshot subnet(s) every STEP blocks from START to END (inclusive), in chunks of
            CHUNK-SIZE blocks, CONCURRENCY chunks at a time. Transport and node errors are retried
            with exponential backoff; a chunk is written as one unit and then marked complete in
            ingest_log. Run the same command again after a crash: finished chunks are skipped and
            nothing is duplicated. History needs an archive node.
        """),
        epilog=_fmt("""
            examples:
              yumaflow backfill --chain wss://archive.example:443 --netuid 1,3 \\
                  --start-block 4000000 --end-block 4007200 --step 360
              yumaflow backfill --chain sim:7 --netuid 1 --start-block 0 --end-block 200 \\
                  --task-runner dask --dask-workers 2             # chunks on a local Dask cluster
              yumaflow backfill ... --task-runner tcp://10.0.0.5:8786   # on an existing Dask cluster
        """),
    )
    _add_chain_options(p)
    p.add_argument("--start-block", type=_block, required=True, metavar="A", help="first block")
    p.add_argument("--end-block", type=_block, required=True, metavar="B", help="last block (inclusive)")
    p.add_argument("--step", type=_positive, default=1, metavar="BLOCKS", help="blocks between snapshots (default 1)")
    p.add_argument("--chunk-size", type=_positive, default=10, metavar="N",
                   help="snapshots per chunk, the unit of retry and of resumption (default 10)")
    _add_runner_options(p)
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser(
        "epoch",
        help="the validator's evaluation epoch: query miners, score, set weights (dry run unless --push)",
        description=_fmt("""
            One evaluation epoch as a Prefect flow: snapshot the subnet, make seeded forecasting
            challenges, query every miner with an axon (signed requests, per-miner timeout, a deadline
            for the batch), validate and score the answers in one batch, smooth the scores (EMA, state
            in the warehouse), turn them into u16 weights as the chain expects, project this epoch
            with the consensus engine, and push (only with --push). Every step is recorded in the
            warehouse; run it again within the same tempo after a crash and it resumes, without
            asking, smoothing or pushing twice.
        """),
        epilog=_fmt("""
            examples:
              yumaflow epoch --chain ws://127.0.0.1:9944 --netuid 1 --hotkey-uri //Alice
              yumaflow epoch --chain wss://node.example:443 --netuid 7 --wallet validator --hotkey default --push
        """),
    )
    _add_chain_options(p, record=False)
    _add_hotkey_options(p)
    p.add_argument("--push", action="store_true", help="send the weights (default: dry run)")
    p.add_argument("--challenges", type=_positive, default=16, metavar="N", help="challenges per epoch (default 16)")
    p.add_argument("--context", type=_positive, default=96, metavar="N",
                   help="context window of a challenge, in steps (default 96)")
    p.add_argument("--horizon", type=_positive, default=24, metavar="N",
                   help="steps a challenge asks for; for the price task, blocks until its truth (default 24)")
    p.add_argument("--timeout", type=_seconds, default=5.0, metavar="S",
                   help="per-miner timeout in seconds (default 5)")
    p.add_argument("--deadline", type=_seconds, metavar="S",
                   help="deadline for the whole query batch (default timeout+2)")
    p.add_argument("--series", type=Path, metavar="FILE", help="Parquet file of series (default: the seeded generator)")
    p.add_argument("--seed", type=int, default=0, help="seed of the series generator and challenges (default 0)")
    p.add_argument("--version-key", type=int, default=0, metavar="K", help="weights version key (default 0)")
    _add_task_option(p)
    p.set_defaults(func=cmd_epoch)

    miner = sub.add_parser("miner", help="run a miner: `yumaflow miner serve`")
    miner_sub = miner.add_subparsers(dest="miner_command", metavar="SUBCOMMAND", required=True,
                                     parser_class=_CommandParser)
    p = miner_sub.add_parser(
        "serve",
        help="serve forecasts to the subnet's validators over signed HTTP",
        description=_fmt("""
            Answer forecasting challenges (POST /forecast) with a model: a built-in baseline or an
            MLflow-registered model by name and alias. Only requests signed (sr25519) by hotkeys
            holding a validator permit on the subnet are answered (the permit list is re-read from
            the chain); stale timestamps and replayed nonces are refused and bodies are capped. With
            an mlflow:models:/NAME@ALIAS model the alias is re-resolved every --reload-interval
            seconds, so a new champion is served without a restart. --publish-ip announces the
            address on chain with serve_axon.
        """),
        epilog=_fmt("""
            examples:
              yumaflow miner serve --chain ws://127.0.0.1:9944 --netuid 1 --hotkey-uri //Bob --port 8091
              yumaflow miner serve --chain wss://node.example:443 --netuid 7 --wallet miner \\
                  --model mlflow:models:/forecaster@champion --publish-ip 203.0.113.7
        """),
    )
    _add_chain_options(p, record=False)
    _add_hotkey_options(p)
    _add_task_option(p)
    p.add_argument("--model", default="baseline:seasonal_naive:24", metavar="SPEC",
                   help="baseline:seasonal_naive:PERIOD | baseline:last_value | baseline:drift | "
                        "mlflow:models:/NAME@ALIAS (default baseline:seasonal_naive:24)")
    p.add_argument("--host", default="0.0.0.0", help="interface to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=_positive, default=8091, help="port (default 8091)")
    p.add_argument("--publish-ip", metavar="IP", help="announce IP:PORT on chain with serve_axon")
    p.add_argument("--permit-refresh", type=_seconds, default=60.0, metavar="S",
                   help="seconds between re-reads of the validator permits (default 60)")
    p.add_argument("--reload-interval", type=_seconds, default=30.0, metavar="S",
                   help="seconds between checks for a new model version behind an alias (default 30)")
    p.set_defaults(func=cmd_miner_serve)

    p = sub.add_parser(
        "train",
        help="train a forecasting model with Lightning, track it in MLflow and register it (alias challenger)",
        description=_fmt("""
            Train a miner model on windows cut from the seeded series generator (or --series FILE),
            split by time, on the CPU, deterministic for a seed, with early stopping on validation
            loss. The run goes to MLflow (parameters, per-epoch metrics, the model with its signature
            and an input example, the data's fingerprint and the code version); the model is
            registered under --name and the new version gets the alias `challenger`.
        """),
        epilog=_fmt("""
            examples:
              yumaflow train --model mlp --max-epochs 5
              yumaflow train --model conv --series data/series.parquet --name forecaster
        """),
    )
    p.add_argument("--model", default="linear", help="seasonal_naive | linear | mlp | conv (default linear)")
    p.add_argument("--name", default="forecaster", help="registered model name (default forecaster)")
    p.add_argument("--series", type=Path, metavar="FILE", help="Parquet file of series (series_id, t, value)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context", type=_positive, default=96, metavar="N", help="context window length (default 96)")
    p.add_argument("--horizon", type=_positive, default=24, metavar="N", help="forecast horizon (default 24)")
    p.add_argument("--max-epochs", type=_positive, default=10, metavar="N")
    p.add_argument("--batch-size", type=_positive, default=256, metavar="N")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI [env YUMAFLOW_MLFLOW_TRACKING_URI]")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "compare",
        help="compare registered model versions on the validator's challenges and on-chain incentive",
        description=_fmt("""
            Score chosen versions of a registered model on the same held-out challenges (the
            validator's recorded challenges from the warehouse where they exist, otherwise a seeded
            set) with the validator's own scoring code; join each version with the on-chain incentive
            of the miners that served it; log a comparison run to MLflow with a table and plots; and
            move the `champion` alias when the challenger wins by more than --margin.
        """),
        epilog=_fmt("""
            examples:
              yumaflow compare --name forecaster                      # champion vs challenger
              yumaflow compare --name forecaster --refs champion 7 8 --margin 0.02
        """),
    )
    p.add_argument("--name", default="forecaster", help="registered model name (default forecaster)")
    p.add_argument("--refs", nargs="*", metavar="REF", help="aliases or version numbers (default champion challenger)")
    p.add_argument("--margin", type=_non_negative, default=0.01,
                   help="score margin the challenger must win by (default 0.01)")
    p.add_argument("--netuid", type=int, help="use the validator's recorded challenges of this subnet")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out set when none is recorded")
    p.add_argument("--warehouse", type=Path, metavar="DIR", help="warehouse directory [env YUMAFLOW_WAREHOUSE]")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI [env YUMAFLOW_MLFLOW_TRACKING_URI]")
    _add_common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "whatif",
        help="recompute history or a named scenario under other hyperparameters, bonds carried forward",
        description=_fmt("""
            Recompute the epochs of a block range from the warehouse (or of a built-in synthetic
            scenario) under other hyperparameters — classic vs Yuma3, liquid alpha and its bounds,
            bonds penalty, kappa, bonds moving average — carrying bonds and permits forward epoch by
            epoch as the chain would, all variants and subnets in one batch per epoch. Results are
            stored as epoch_results under each variant's name, and a comparison is printed: incentive
            concentration (Gini, top-3 share) and the relative dividends of a weight copier and a
            tiny-stake validator. The unchanged `baseline` variant always runs first.

            Scenarios: kappa_moves_first, kappa_moves_late, all_validators_switch, weight_copier,
            big_validator_moves_late, new_strong_miner.
        """),
        epilog=_fmt("""
            examples:
              yumaflow whatif --scenario weight_copier --variant classic:yuma3_enabled=false \\
                  --variant liquid:liquid_alpha_enabled=true,alpha_low=6553,alpha_high=19660
              yumaflow whatif --netuid 1 --start-block 100 --end-block 200 --variant kappa60:kappa=39321
        """),
    )
    p.add_argument("--variant", action="append", metavar="NAME:KEY=VALUE,…",
                   help="a variant (repeatable): yuma3_enabled, liquid_alpha_enabled, alpha_low, alpha_high, "
                        "alpha_sigmoid_steepness, bonds_penalty, kappa, bonds_moving_avg, "
                        "liquid_alpha_consensus_mode (current|previous|auto|max), commit_reveal_enabled; or a "
                        "named variant alone: consensus_current, consensus_previous, consensus_auto, "
                        "consensus_max, classic")
    p.add_argument("--scenario", metavar="NAME", help="a built-in synthetic scenario")
    p.add_argument("--epochs", type=_positive, metavar="N", help="epochs of the scenario")
    p.add_argument("--netuid", type=int, metavar="N", help="recompute this subnet's history from the warehouse")
    p.add_argument("--start-block", type=_block, metavar="A")
    p.add_argument("--end-block", type=_block, metavar="B")
    p.add_argument("--copier-uid", type=int, metavar="UID", help="a weight copier to report (warehouse mode)")
    p.add_argument("--tiny-uid", type=int, metavar="UID", help="a tiny-stake validator to report (warehouse mode)")
    p.add_argument("--warehouse", type=Path, metavar="DIR", help="warehouse directory [env YUMAFLOW_WAREHOUSE]")
    p.add_argument("--variants-per-chunk", type=_positive, metavar="N",
                   help="variants replayed together in one chunk (default: all in one batch on threads; spread "
                        "over the chunks a Dask cluster runs at once)")
    _add_runner_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_whatif)

    p = sub.add_parser(
        "demo",
        help="the whole system on the simulated subnet in a few minutes: what `make run` runs",
        description=_fmt("""
            Train two forecasting models (MLflow), start a simulated subnet with our validator
            (//Alice), honest validators, a weight copier and a tiny-stake validator, serve the
            models and hostile miners over HTTP on 127.0.0.1, run several tempos of the validator's
            epoch flow (query, score, weights, projection, push) with a snapshot of every block into
            the warehouse, recompute every epoch with the consensus engine (parity with the chain's
            own results must be exact, else the demo fails), run what-if variants, compare the models
            (moving the champion alias), and write the HTML report. Prints where everything is.

            Run it again to continue the same simulated chain with a new challenger model.
        """),
        epilog=_fmt("""
            examples:
              yumaflow demo
              yumaflow demo --tempos 2 --warehouse /tmp/wh --tracking-uri sqlite:////tmp/mlflow.db --fresh
        """),
    )
    p.add_argument("--tempos", type=_positive, default=4, metavar="N", help="tempos (epochs) to run (default 4)")
    p.add_argument("--seed", type=int, default=7, metavar="SEED", help="the simulated subnet's seed (default 7)")
    p.add_argument("--state", type=Path, default=Path("data/demo/sim.json"), metavar="FILE",
                   help="the simulated chain's state file (default data/demo/sim.json)")
    p.add_argument("--fresh", action="store_true", help="start the simulated chain over (remove --state first)")
    p.add_argument("--timeout", type=_seconds, default=2.0, metavar="SECONDS",
                   help="per-miner query timeout (default 2; the epoch's deadline is one second more)")
    p.add_argument("--warehouse", type=Path, metavar="DIR", help="warehouse directory [env YUMAFLOW_WAREHOUSE]")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI [env YUMAFLOW_MLFLOW_TRACKING_URI]")
    p.add_argument("--reports-dir", type=Path, metavar="DIR", help="where to write the report (default ./data/reports)")
    _add_common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "report",
        help="an HTML report with plots for one subnet and block range, from the warehouse",
        description=_fmt("""
            Write a self-contained HTML report (plots inline, no network needed to open it) for one
            subnet and block range: incentive and dividend distributions, stake vs dividends,
            consensus vs each validator's weights, recompute vs chain parity, what-if deltas over
            time, and miner scores over epochs. Sections without data say which command fills them.
        """),
        epilog=_fmt("""
            example:
              yumaflow report --netuid 1 --start-block 100 --end-block 200
        """),
    )
    p.add_argument("--netuid", type=int, required=True, metavar="N")
    p.add_argument("--start-block", type=_block, metavar="A", help="first block (default: the first stored)")
    p.add_argument("--end-block", type=_block, metavar="B", help="last block, inclusive (default: the last stored)")
    p.add_argument("--warehouse", type=Path, metavar="DIR", help="warehouse directory [env YUMAFLOW_WAREHOUSE]")
    p.add_argument("--reports-dir", type=Path, metavar="DIR", help="where to write (default ./data/reports)")
    _add_common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "config",
        help="show the effective settings and the environment variable of each",
        description=_fmt("""
            Print every setting with its effective value, after options, YUMAFLOW_* environment
            variables and the TOML file are applied.
        """),
        epilog=_fmt("""
            examples:
              yumaflow config
              YUMAFLOW_WAREHOUSE=/srv/wh yumaflow config
              yumaflow config --config yumaflow.toml
        """),
    )
    _add_common(p)
    p.set_defaults(func=cmd_config)
    return parser


# Offline and quiet by default for every command (a user's own environment still wins): no telemetry
# from Prefect or MLflow, and time for Prefect's temporary server to start on a loaded machine.
QUIET_OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # "Creating initial MLflow database tables..." is not news
}


#: Commands that run Prefect flows (and so may start Prefect's temporary server); `consensus` with --netuid.
FLOW_COMMANDS = frozenset({"snapshot", "backfill", "epoch", "train", "compare", "whatif", "report", "demo"})


def main(argv: list[str] | None = None) -> int:
    for name, value in QUIET_OFFLINE_DEFAULTS.items():
        os.environ.setdefault(name, value)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from schemas import SchemaError

    runs_flows = args.command in FLOW_COMMANDS or (args.command == "consensus" and getattr(args, "netuid", None))
    if runs_flows:  # Prefect's temporary server, if one starts, dies with this process
        from flows.tether import tether_prefect_server

        tether_prefect_server()
    debug = args.debug or os.environ.get("YUMAFLOW_DEBUG", "").lower() in ("1", "true", "yes")
    if not debug:
        _quiet_tracebacks()
    try:
        return args.func(args)
    except (SchemaError, FileNotFoundError, ValueError, LookupError) as exc:
        # Bad input: one clear line naming what was wrong, no traceback.
        if debug:
            traceback.print_exc()
        print(f"yumaflow {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"yumaflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        if _is_expected_failure(exc):
            # The world failed (a node, the network, a locked warehouse): name it, after the retries.
            print(f"yumaflow {args.command}: failed: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        else:
            print(f"yumaflow {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
                  f"(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _quiet_tracebacks() -> None:
    """Log records keep their message but not their traceback (Prefect logs a failed task or flow run with
    one); --debug or a DEBUG log level keeps them."""
    import logging

    if os.environ.get("PREFECT_LOGGING_LEVEL", "").upper() == "DEBUG":
        return

    class NoTraceback(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            return True

    quiet = NoTraceback()
    logging.getLogger().addFilter(quiet)
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
    try:  # Prefect's own handlers are configured when it is imported
        import prefect.logging.configuration  # noqa: F401

        for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
            logger = logging.getLogger(name)
            logger.addFilter(quiet)
            for handler in logger.handlers:
                handler.addFilter(quiet)
    except ImportError:  # pragma: no cover - prefect is a dependency
        pass


if __name__ == "__main__":
    sys.exit(main())
