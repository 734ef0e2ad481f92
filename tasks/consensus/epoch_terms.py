"""The epoch's output terms as the chain stores them (subtensor `run_epoch/epoch_terms.rs`): per uid u16 and
rao (`neuron_outputs`), and the new bond rows (`bond_outputs`), from the engine's I32F32 results."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from schemas.consensus import EPOCH_BONDS_OUT, EPOCH_KEY, EPOCH_NEURONS_OUT
from tasks.consensus.epoch_loaders import ChunkNeurons, Edges
from tasks.consensus.fixed import np_to_u16

KEY = list(EPOCH_KEY)


class EpochOutputs(NamedTuple):
    """neurons: one row per (netuid, mechid, block, uid), EPOCH_NEURONS_OUT columns, in that order;
    bonds: one row per new nonzero bond edge as the chain stores it, EPOCH_BONDS_OUT columns, sorted
    by (netuid, mechid, block, validator_uid, miner_uid)."""

    neurons: pl.DataFrame
    bonds: pl.DataFrame


class EdgeResults(NamedTuple):
    """What the edge steps give back per chunk: per-neuron columns and the stored bond edges (global
    vid/mid)."""

    neurons: dict[str, np.ndarray]
    bonds: pl.DataFrame
    NEURON_COLUMNS = ("consensus_bits", "validator_trust_bits", "incentive_bits", "raw_dividend_bits")


def neuron_outputs(keys: pl.DataFrame, nr: dict[str, np.ndarray]) -> pl.DataFrame:
    """EPOCH_NEURONS_OUT rows, sorted by (netuid, mechid, block, uid) (the `nid` order): `keys` the batch's
    key and uid per nid, `nr` the engine's per-neuron columns."""
    columns = {
        **{name: keys.get_column(name) for name in keys.columns},
        "stake_weight": nr["stake_weight"], "active": nr["active"], "validator_permit": nr["new_permit"],
        "consensus": np_to_u16(nr["consensus_bits"]), "incentive": np_to_u16(nr["incentive_bits"]),
        "dividends": np_to_u16(nr["dividend_bits"]), "validator_trust": np_to_u16(nr["validator_trust_bits"]),
        "server_emission": nr["server_emission"], "validator_emission": nr["validator_emission"],
        "emission": nr["emission"],
    }
    schema = EPOCH_NEURONS_OUT.polars_schema()
    return pl.DataFrame({name: _as(columns[name], dtype) for name, dtype in schema.items()})


def _as(values, dtype: pl.DataType) -> pl.Series:
    """A NumPy column (or a Series) as a Series of the output's type (the values fit: u16, rao ≥ 0)."""
    series = values if isinstance(values, pl.Series) else pl.Series(values)
    return series if series.dtype == dtype else series.cast(dtype)


def bond_outputs(parts: list[Edges], nr: ChunkNeurons, keys: pl.DataFrame, first_nid: int) -> pl.DataFrame:
    """§2.12: rows of uids with a new permit, nonzero u16 entries, sorted by key, validator, miner
    (the (vid, mid) order, since nid follows the key order). `keys`: the batch's key and uid per nid."""
    stored = Edges(*(np.concatenate(cols) for cols in zip(*parts, strict=True)))
    stored = stored.select(nr["new_permit"][stored.vid] & (stored.value > 0))
    order = np.argsort(stored.vid * nr.height + stored.mid, kind="stable")
    vid, mid = stored.vid[order] + first_nid, stored.mid[order] + first_nid
    out = keys[vid].select(*KEY, validator_uid="uid").with_columns(
        miner_uid=keys.get_column("uid").gather(mid), bond=pl.Series(stored.value[order]))
    schema = EPOCH_BONDS_OUT.polars_schema()
    return out.select([pl.col(c).cast(t) for c, t in schema.items()])
