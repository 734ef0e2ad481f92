"""The `yumaflow` command: a thin layer over flows and tasks.

Heavy libraries (torch, mlflow, prefect, polars) are imported inside each command, so `yumaflow --help`
answers at once. Orchestrated work starts Prefect flows; single computations (`consensus`) call the
library directly and never wait for Prefect's start-up.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

EXIT_BAD_INPUT = 2


def _fmt(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="TOML settings file (default: $YUMAFLOW_CONFIG, else ./yumaflow.toml if present)")


def cmd_consensus(args: argparse.Namespace) -> int:
    from tasks.consensus import run_consensus_files

    started = time.perf_counter()
    out = run_consensus_files(args.inputs, args.output)
    elapsed = time.perf_counter() - started
    n_epochs = out.neurons.select(["netuid", "mechid", "block"]).unique().height
    print(f"recomputed {n_epochs} epoch(s), {out.neurons.height} neuron rows, {out.bonds.height} bond edges "
          f"in {elapsed:.2f} s")
    print(f"wrote {args.output / 'neurons.parquet'}")
    print(f"wrote {args.output / 'bonds.parquet'}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from flows.settings import Settings, load_settings

    settings = load_settings(args.config)
    for name, field in Settings.model_fields.items():
        print(f"{name:<22} {getattr(settings, name)!s:<32} YUMAFLOW_{name.upper():<22} {field.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yumaflow",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "consensus",
        help="recompute Yuma Consensus epochs from Parquet files, bit-exact with the chain",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        """),
        epilog=_fmt("""
            example:
              yumaflow consensus --inputs data/epochs_in --output data/epochs_out
        """),
    )
    p.add_argument("--inputs", type=Path, required=True, metavar="IN", help="directory with the four input files")
    p.add_argument("--output", type=Path, required=True, metavar="OUT", help="directory to write the results to")
    p.set_defaults(func=cmd_consensus)

    p = sub.add_parser(
        "config",
        help="show the effective settings and the environment variable of each",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from schemas import SchemaError

    try:
        return args.func(args)
    except (SchemaError, FileNotFoundError, ValueError) as exc:
        # Bad input: one clear line naming what was wrong, no traceback.
        print(f"yumaflow {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
