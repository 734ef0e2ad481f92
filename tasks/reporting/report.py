"""A self-contained HTML report of one subnet over a block range, read from the warehouse (DESIGN.md §8).

The page needs no network to open: no external scripts, styles or fonts, and every plot is an inline
base64 PNG drawn by matplotlib's Agg backend. Each section says in one sentence what it shows; a
section whose data is not in the warehouse shows a short "no data: run …" note instead.

Chain quantities stay in the chain's units until drawn: u16 shares are divided by 65535 and rao by
1e9 only for the axes.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: plots render to PNG bytes
import matplotlib.pyplot as plt
import polars as pl

from tasks.consensus.inputs import chain_parity
from warehouse import Warehouse

U16_MAX = 65535
RAO_PER_TAO = 1e9
CHAIN_VARIANT = "chain"
TOP_MINERS = 24  # miners shown in the consensus-vs-weights heatmap

SECTIONS = {
    "distributions": "Incentive and dividend distributions",
    "stake_dividends": "Stake vs dividends",
    "consensus_weights": "Consensus vs validators' weights",
    "parity": "Recompute vs chain parity",
    "whatif": "What-if deltas over time",
    "scores": "Miner scores over epochs",
}


def render_report(warehouse: Warehouse, netuid: int, start_block: int | None, end_block: int | None,
                  out_path: Path | str) -> Path:
    """Write the HTML report of `netuid` over blocks start_block..end_block (inclusive; None = open) to
    `out_path` atomically (a temporary file in the same directory, then a rename); returns the path."""
    out_path = Path(out_path)
    read = _reader(warehouse, netuid, start_block, end_block)
    neurons = read("neurons")
    latest = neurons.filter(pl.col("block") == pl.col("block").max()) if neurons.height else neurons
    sections = [
        _distributions(latest),
        _stake_dividends(latest),
        _consensus_weights(neurons, read("weights")),
        _parity(read("epoch_results"), neurons, read("subnets")),
        _whatif(read("epoch_results")),
        _scores(read("scores")),
    ]
    page = _page(netuid, start_block, end_block, neurons, sections)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        # mkstemp creates 0600; a report is meant to be shared: the mode any new file gets (umask)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def _umask() -> int:
    """The process's umask (read by setting and restoring it: os has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _reader(warehouse: Warehouse, netuid: int, start_block: int | None, end_block: int | None):
    def read(table: str) -> pl.DataFrame:
        return warehouse.read(table, netuid=netuid, block_start=start_block, block_end=end_block)
    return read


# ------------------------------------------------------------------ sections (title, sentence, body)

def _distributions(latest: pl.DataFrame) -> tuple[str, str, str]:
    key = "distributions"
    if latest.height == 0:
        return _no_data(key, "neurons", "yumaflow backfill (or snapshot) for this subnet and range")
    block = latest["block"][0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, column, color in ((axes[0], "incentive", "#3b7dd8"), (axes[1], "dividends", "#d8833b")):
        shares = latest.filter(pl.col(column) > 0).sort(column, descending=True)
        ax.bar(range(shares.height), shares[column] / U16_MAX, color=color)
        ax.set_title(f"{column} (nonzero uids, by rank)")
        ax.set_xlabel("rank")
        ax.set_ylabel("share of the subnet (u16 / 65535)")
    summary = latest.select(
        (pl.col("incentive") > 0).sum().alias("miners with incentive"),
        _gini("incentive").alias("incentive Gini"),
        (pl.col("incentive").sort(descending=True).head(3).sum() / pl.col("incentive").sum())
        .alias("incentive top-3 share"),
        (pl.col("dividends") > 0).sum().alias("validators with dividends"),
        _gini("dividends").alias("dividends Gini"))
    return (key, f"How incentive (miners) and dividends (validators) are spread over the uids at the latest "
                 f"snapshot, block {block}.", _img(fig, SECTIONS[key]) + _table(summary))


def _stake_dividends(latest: pl.DataFrame) -> tuple[str, str, str]:
    key = "stake_dividends"
    validators = latest.filter(pl.col("validator_permit") | (pl.col("dividends") > 0))
    if validators.height == 0:
        return _no_data(key, "neurons with a validator permit", "yumaflow backfill for this subnet and range")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    stake_tao = validators["total_stake"].cast(pl.Float64) / RAO_PER_TAO
    dividends = validators["dividends"] / U16_MAX
    ax.scatter(stake_tao, dividends, color="#3b7dd8")
    for uid, x, y in zip(validators["uid"], stake_tao, dividends, strict=True):
        ax.annotate(str(uid), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xlabel("total stake (TAO)")
    ax.set_ylabel("dividends (u16 / 65535)")
    ax.set_title(f"validators at block {latest['block'][0]}")
    return (key, "Each validator's total stake against the dividends it earned at the latest snapshot "
                 "(labels are uids).", _img(fig, SECTIONS[key]))


def _consensus_weights(neurons: pl.DataFrame, weights: pl.DataFrame) -> tuple[str, str, str]:
    key = "consensus_weights"
    weights = weights.filter(pl.col("mechid") == 0)
    common = weights.select("block").unique().join(neurons.select("block").unique(), on="block")
    if common.height == 0:
        return _no_data(key, "weights and neurons at a common block", "yumaflow backfill for this subnet and range")
    block = common["block"].max()  # the latest snapshot holding both
    at = weights.filter(pl.col("block") == block)
    consensus = neurons.filter(pl.col("block") == block).select("uid", "consensus")
    top = consensus.sort("consensus", "uid", descending=[True, False]).head(TOP_MINERS)["uid"]
    # Each validator's row normalised to sum 1, the scale the chain's consensus (a stake-weighted
    # median of these columns) is stored on.
    shares = (at.with_columns((pl.col("weight") / pl.col("weight").sum().over("validator_uid")).alias("share"))
              .filter(pl.col("miner_uid").is_in(top.implode()))
              .pivot(on="miner_uid", index="validator_uid", values="share")
              .sort("validator_uid"))
    columns = [str(uid) for uid in top]
    for c in columns:
        if c not in shares.columns:
            shares = shares.with_columns(pl.lit(0.0).alias(c))
    consensus_row = consensus.filter(pl.col("uid").is_in(top.implode())).sort("consensus", "uid",
                                                                             descending=[True, False])
    matrix = [list(row) for row in shares.select(pl.col(columns).fill_null(0.0)).iter_rows()]
    matrix.append(list(consensus_row["consensus"] / U16_MAX))
    labels = [f"v{uid}" for uid in shares["validator_uid"]] + ["consensus"]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(labels) + 1.6))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(len(columns)), columns, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.axhline(len(labels) - 1.5, color="white", linewidth=2)
    ax.set_xlabel(f"miner uid (top {len(columns)} by consensus)")
    fig.colorbar(image, ax=ax, label="weight share / consensus")
    return (key, f"Each validator's normalised weights on the top miners at block {block}, with the chain's "
                 "consensus (bottom row) on the same scale.", _img(fig, SECTIONS[key]))


def _parity(results: pl.DataFrame, neurons: pl.DataFrame, subnets: pl.DataFrame) -> tuple[str, str, str]:
    key = "parity"
    chain_results = results.filter(pl.col("variant") == CHAIN_VARIANT).drop("variant")
    parity = chain_parity(chain_results, neurons, subnets) if chain_results.height else pl.DataFrame()
    if parity.height == 0:
        return _no_data(key, "epoch_results (variant chain) with the chain's snapshot of the same epoch",
                        "yumaflow consensus over this range")
    summary = (parity.group_by("column")
               .agg(pl.col("block").n_unique().alias("epochs"), pl.col("uids").sum(), pl.col("equal").sum(),
                    pl.col("max_abs_diff").max())
               .with_columns(pl.when(pl.col("equal") == pl.col("uids")).then(pl.lit("exact"))
                             .otherwise(pl.lit("DIFFERS")).alias("parity"))
               .sort("column"))
    exact = summary["parity"].eq("exact").all()
    epochs = parity["block"].n_unique()
    verdict = (f"<p class='{'ok' if exact else 'bad'}'>{'Exact' if exact else 'Not exact'}: "
               f"{summary['equal'].sum()}/{summary['uids'].sum()} uid values equal over {epochs} epochs.</p>")
    return (key, "Per output column, on how many uids the recomputed epoch (variant chain) equals the chain's "
                 "stored value, and the largest difference (u16 or rao).", verdict + _table(summary))


def _whatif(results: pl.DataFrame) -> tuple[str, str, str]:
    key = "whatif"
    keys = ["netuid", "mechid", "block", "uid"]
    chain = results.filter(pl.col("variant") == CHAIN_VARIANT).select(*keys, "dividends", "incentive")
    variants = results.filter(pl.col("variant") != CHAIN_VARIANT).select("variant", *keys, "dividends",
                                                                          "incentive")
    deltas = (variants.join(chain, on=keys, suffix="_chain")
              .group_by("variant", "block")
              .agg(((pl.col(c).cast(pl.Int64) - pl.col(f"{c}_chain").cast(pl.Int64)).abs().sum() / U16_MAX)
                   .alias(f"{c}_l1") for c in ("dividends", "incentive"))
              .sort("variant", "block"))
    if deltas.height == 0:
        return _no_data(key, "what-if variants with the chain replay of the same epochs",
                        "yumaflow consensus, then yumaflow whatif over this range")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, column in zip(axes, ("dividends", "incentive"), strict=True):
        for (variant,), rows in deltas.group_by("variant", maintain_order=True):
            ax.plot(rows["block"], rows[f"{column}_l1"], marker="o", label=variant)
        ax.set_title(f"{column}: Σ|variant − chain| over uids")
        ax.set_xlabel("epoch block")
        ax.set_ylabel("share of the subnet")
        ax.legend(fontsize=7)
    return (key, "For each what-if variant and epoch, how far its dividends and incentive move from the chain "
                 "replay (sum over uids of the absolute difference, as a share of the subnet).",
            _img(fig, SECTIONS[key]) + _table(deltas))


def _scores(scores: pl.DataFrame) -> tuple[str, str, str]:
    key = "scores"
    if scores.height == 0:
        return _no_data(key, "scores", "yumaflow epoch (the validator's evaluation) on this subnet")
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for (uid,), rows in scores.sort("miner_uid", "block").group_by("miner_uid", maintain_order=True):
        ax.plot(rows["block"], rows["smoothed_score"], marker=".", label=f"uid {uid}")
    ax.set_xlabel("epoch block")
    ax.set_ylabel("smoothed score")
    if scores["miner_uid"].n_unique() <= 12:
        ax.legend(fontsize=7, ncol=2)
    return (key, "Each miner's EMA-smoothed score in every evaluation epoch of our validator.",
            _img(fig, SECTIONS[key]))


# ------------------------------------------------------------------ helpers

def _gini(column: str) -> pl.Expr:
    """Gini coefficient of a nonnegative column: Σ(2i − n − 1)·x_(i) / (n·Σx), x sorted ascending."""
    x = pl.col(column).cast(pl.Float64).sort()
    n = pl.len()
    i = pl.int_range(1, n + 1)
    return ((2 * i - n - 1) * x).sum() / (n * x.sum())


def _no_data(key: str, what: str, run: str) -> tuple[str, str, str]:
    return key, "", f"<p class='nodata'>no data: no {html.escape(what)} in this range; run {html.escape(run)}.</p>"


def _img(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _table(frame: pl.DataFrame) -> str:
    def cell(v) -> str:
        return html.escape(f"{v:.4g}" if isinstance(v, float) else str(v))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .2em .6em; text-align: right; }
img { max-width: 100%; }
.nodata { color: #777; font-style: italic; } .ok { color: #1a7f37; } .bad { color: #c62828; font-weight: bold; }
"""


def _page(netuid: int, start_block, end_block, neurons: pl.DataFrame, sections) -> str:
    first = "first" if start_block is None else start_block
    last = "last" if end_block is None else end_block
    span = f"blocks {first}..{last}"
    stored = (f"{neurons['block'].n_unique()} snapshots stored, blocks "
              f"{neurons['block'].min()}..{neurons['block'].max()}" if neurons.height else "no snapshots stored")
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<title>yumaflow report: netuid {netuid}, {span}</title><style>{STYLE}</style></head><body>",
             f"<h1>yumaflow report: netuid {netuid}, {span}</h1><p>{stored}.</p>"]
    for key, sentence, body in sections:
        parts.append(f"<section id='{key}'><h2>{html.escape(SECTIONS[key])}</h2>")
        if sentence:
            parts.append(f"<p>{html.escape(sentence)}</p>")
        parts.append(body + "</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
