"""The batch read into what the edge steps compute on (subtensor `run_epoch/weights_bonds_loaders.rs`).

A validated batch (`validate.index_batch`) is cut into chunks of whole epochs: per chunk, the per-neuron
NumPy columns the edge steps read (`ChunkNeurons`) and the weight and bond edges (`Edges`) with chunk
rows `vid`/`mid`; a chunk of same-size epochs whose weights are dense is also laid out on a grid
[epoch, validator, miner] (`dense_grid`). The group operations over that layout (sums and maxima by
row or column, aligning two edge sets) live here too.
"""

from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

import numpy as np

from tasks.consensus.validate import EdgeTable, IndexedBatch


class Edges(NamedTuple):
    """A sparse matrix of the batch: entry k is (vid[k], mid[k]) with value[k]; keys sorted, unique."""

    vid: np.ndarray
    mid: np.ndarray
    value: np.ndarray

    def select(self, mask: np.ndarray) -> Edges:
        if mask.all():
            return self
        return Edges(self.vid[mask], self.mid[mask], self.value[mask])

    def with_value(self, value: np.ndarray) -> Edges:
        return Edges(self.vid, self.mid, value)


# Epochs are processed in chunks of about this many edges: whole-column passes then stay within the
# CPU caches and memory stays bounded; a chunk is itself a columnar batch of many epochs.
CHUNK_EDGES = 1 << 19


# Per-neuron inputs of the edge steps (§2.5–§2.10).
_EDGE_STEP_INPUTS = ("permit_mask", "new_permit", "is_owner", "last_update", "block_at_registration", "offset",
                     "commit_block", "active_stake_bits", "median_stake_bits", "median_total_bits", "kappa_bits",
                     "bonds_penalty_bits", "last_tempo", "yuma3_enabled", "liquid_alpha_enabled",
                     "liquid_consensus_source", "previous_consensus_bits",
                     "ema_alpha_bits", "steepness_bits", "alpha_low_bits", "alpha_high_bits")


class ChunkNeurons:
    """Per-neuron NumPy columns of one chunk of whole epochs (row = nid − first nid of the chunk)."""

    def __init__(self, columns: dict[str, np.ndarray], epoch_start: np.ndarray, epoch_of: np.ndarray | None = None):
        self.columns = columns
        self.height = len(columns["offset"])
        self.epoch_start = epoch_start  # row of each epoch's first neuron
        self.epoch_of = epoch_of if epoch_of is not None else np.repeat(
            np.arange(len(epoch_start)), np.diff(np.r_[epoch_start, self.height]))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def with_columns(self, **columns: np.ndarray) -> ChunkNeurons:
        return ChunkNeurons({**self.columns, **columns}, self.epoch_start, self.epoch_of)

    def epoch_sum(self, values: np.ndarray) -> np.ndarray:
        """Σ of `values` over each neuron's epoch, per neuron (exact Int64)."""
        return np.add.reduceat(values, self.epoch_start)[self.epoch_of]


class Chunk:
    """Epochs e0..e1−1 of the batch: their neurons (`nr`, rows re-based to the chunk), their first global
    nid, and their weight and bond edges — as `Edges` with chunk rows (built on first use: the sparse path
    reads them) or straight from the stored uid columns (the dense grid's scatter reads those)."""

    def __init__(self, batch: IndexedBatch, nr: ChunkNeurons, e0: int, e1: int, first_nid: int,
                 epoch_keys: dict[str, np.ndarray]):
        self.batch, self.nr, self.e0, self.e1, self.first_nid = batch, nr, e0, e1, first_nid
        self.epoch_keys = epoch_keys  # the key columns of the chunk's epochs, in order

    @cached_property
    def weights(self) -> Edges:
        return _chunk_of(self.batch.weights, self.e0, self.e1, self.nr.epoch_start)

    @cached_property
    def bonds(self) -> Edges:
        return _chunk_of(self.batch.bonds, self.e0, self.e1, self.nr.epoch_start)

    def edge_rows(self, table: EdgeTable) -> tuple[np.ndarray, np.ndarray]:
        """Each of the chunk's epochs' stored rows [start, stop) in `table`."""
        return table.start[self.e0:self.e1], table.stop[self.e0:self.e1]


def epoch_chunks(batch: IndexedBatch, nr: dict[str, np.ndarray], chunk_edges: int | None = None):
    """Split the batch into runs of whole epochs with ~chunk_edges weight and bond edges each (`Chunk`s),
    with the per-neuron columns (`nid` order) and `offset` re-based to the chunk."""
    chunk_edges = chunk_edges or CHUNK_EDGES
    n_epochs = batch.epochs.height
    edges_per_epoch = (batch.weights.stop - batch.weights.start) + (batch.bonds.stop - batch.bonds.start)
    neurons_per_epoch = np.bincount(batch.neurons.get_column("eid").to_numpy(), minlength=n_epochs)
    cumulative = np.cumsum(edges_per_epoch + neurons_per_epoch)
    bounds = np.searchsorted(cumulative, np.arange(chunk_edges, cumulative[-1], chunk_edges), side="right")
    bounds = np.unique(np.r_[0, bounds, n_epochs])
    first_nid = np.r_[0, np.cumsum(neurons_per_epoch)]
    columns = {name: nr[name] for name in _EDGE_STEP_INPUTS}
    epoch_keys = batch.epoch_keys  # read once, sliced per chunk
    for e0, e1 in zip(bounds[:-1], bounds[1:], strict=True):
        n0, n1 = int(first_nid[e0]), int(first_nid[e1])
        part = {name: col[n0:n1] for name, col in columns.items()}
        part["offset"] = part["offset"] - n0
        yield Chunk(batch, ChunkNeurons(part, first_nid[e0:e1] - n0), int(e0), int(e1), n0,
                    {name: column[e0:e1] for name, column in epoch_keys.items()})


def _chunk_of(table: EdgeTable, e0: int, e1: int, epoch_start: np.ndarray) -> Edges:
    """The edges of epochs e0..e1−1 with chunk rows vid = epoch start + validator uid (mid likewise)."""
    start, stop = table.start[e0:e1], table.stop[e0:e1]
    filled = stop > start
    first, last = start[filled], stop[filled]
    if len(first) and (first[1:] == last[:-1]).all():  # one run of rows (the usual layout)
        rows = slice(int(first[0]), int(last[-1]))
        columns = (table.validator_uid[rows], table.miner_uid[rows], table.value[rows])
    else:
        columns = tuple(np.concatenate([col[a:b] for a, b in zip(first, last, strict=True)] or [col[:0]])
                        for col in (table.validator_uid, table.miner_uid, table.value))
    offset = np.repeat(epoch_start, stop - start)
    validator, miner, value = columns
    return Edges(offset + validator, offset + miner, value.astype(np.int64))


# ---------------------------------------------------------------- helpers over the batch index

def sum_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Exact Int64 sum of `values` per dense index 0..size−1 (0 for an index without entries)."""
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, index, values)
    return out


def sum_by_sorted(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """`sum_by` for a non-decreasing index (edges are sorted by vid): one pass of segment sums."""
    out = np.zeros(size, dtype=np.int64)
    if len(index):
        start = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        out[index[start]] = np.add.reduceat(values, start)
    return out


def max_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    np.maximum.at(out, index, values)
    return out


def union_edges(a: Edges, b: Edges, size: int) -> tuple[Edges, np.ndarray, np.ndarray]:
    """Align two sparse matrices on the union of their entries: (keys, a's value or 0, b's or 0).
    Both are sorted by key, so positions come from binary searches (no hash join)."""
    key_a, key_b = a.vid * size + a.mid, b.vid * size + b.mid
    if np.array_equal(key_a, key_b):  # the same entries (dense weights and bonds)
        return a.with_value(np.zeros(len(key_a), np.int64)), a.value, b.value
    at = np.minimum(np.searchsorted(key_a, key_b), max(len(key_a) - 1, 0))
    found = (key_a[at] == key_b) if len(key_a) else np.zeros(len(key_b), bool)
    if found.all():  # b's entries are a subset of a's (the usual case: bonds follow weights)
        keys, a_value = key_a, a.value
        b_value = np.zeros(len(keys), np.int64)
        b_value[at] = b.value
    else:
        keys = np.sort(np.concatenate([key_a, key_b[~found]]))
        a_value = np.zeros(len(keys), np.int64)
        a_value[np.searchsorted(keys, key_a)] = a.value
        b_value = np.zeros(len(keys), np.int64)
        b_value[np.searchsorted(keys, key_b)] = b.value
    return Edges(keys // size, keys % size, np.zeros(len(keys), np.int64)), a_value, b_value


def lookup_edges(table: Edges, query: Edges, size: int) -> np.ndarray:
    """The value of `table` at each entry of `query`, 0 where `table` has no such entry."""
    table_key = table.vid * size + table.mid
    query_key = query.vid * size + query.mid
    if np.array_equal(table_key, query_key):
        return table.value
    if not len(table_key):
        return np.zeros(len(query_key), np.int64)
    at = np.minimum(np.searchsorted(table_key, query_key), len(table_key) - 1)
    return np.where(table_key[at] == query_key, table.value[at], 0)


# ---------------------------------------------------------------- the dense layout of a regular chunk

# A chunk whose epochs all have the same n, and whose weight edges fill at least this share of the grid
# (epochs × rows used × columns used), runs on dense [validator row, miner column] arrays per epoch in the
# compiled kernel (epoch_kernels.dense_epoch_terms): gathers, group sums and merges become loops over rows
# and columns.
DENSE_MIN_FILL = 0.5


class Grid(NamedTuple):
    """The dense layout of a chunk: E epochs of n uids each; `rows`/`cols` the uids that have any weight
    or bond edge as validator/miner; per-uid columns are [E, n] (`per_epoch`)."""

    n_epochs: int
    n: int
    rows: np.ndarray
    cols: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.n_epochs, len(self.rows), len(self.cols)

    def per_epoch(self, values: np.ndarray) -> np.ndarray:
        return values.reshape(self.n_epochs, self.n)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each uid's row and column on the grid (−1 for a uid that is not one)."""
        row_at = np.full(self.n, -1, np.int64)
        row_at[self.rows] = np.arange(len(self.rows))
        col_at = np.full(self.n, -1, np.int64)
        col_at[self.cols] = np.arange(len(self.cols))
        return row_at, col_at


def dense_grid(chunk: Chunk) -> Grid | None:
    """The chunk's grid if its epochs share n and its weights fill at least DENSE_MIN_FILL of it: rows and
    columns are the uids with any weight or bond edge as validator or miner, in any epoch of the chunk."""
    nr = chunk.nr
    n_epochs = len(nr.epoch_start)
    n = nr.height // n_epochs
    if n * n_epochs != nr.height or not np.array_equal(nr.epoch_start, np.arange(n_epochs) * n):
        return None
    from tasks.consensus.epoch_kernels import mark_uids

    rows = np.zeros(n, np.bool_)
    cols = np.zeros(n, np.bool_)
    for table in (chunk.batch.weights, chunk.batch.bonds):
        mark_uids(table.validator_uid, table.miner_uid, *chunk.edge_rows(table), rows, cols)
    start, stop = chunk.edge_rows(chunk.batch.weights)
    weight_count = int((stop - start).sum())
    grid = Grid(n_epochs, n, np.flatnonzero(rows), np.flatnonzero(cols))
    cells = n_epochs * len(grid.rows) * len(grid.cols)
    if cells == 0 or weight_count < DENSE_MIN_FILL * cells:
        return None
    return grid
