"""Helpers for the consensus tests: epochs written as small Python lists, turned into the file
contract's Polars frames (schemas.consensus), run through the engine or the reference, and a tiny
chain simulator that carries stored bonds and permits from one epoch to the next the way the chain
does (the chain actions of yuma_vectors.md §0).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import polars as pl
from reference_yuma import NEURON_FIELDS, OUTPUT_FIELDS, from_int, run_frames, vec_max_upscale_to_u16

from schemas.consensus import EPOCH_BONDS, EPOCH_NEURONS, EPOCH_WEIGHTS, EPOCHS

# The mock runtime of subtensor's tests (yuma_vectors.md §0), with `add_network` (MaxAllowedValidators 64).
MOCK_PARAMS = {
    "tempo": 360,
    "last_mechanism_step_block": 0,
    "owner_uid": None,
    "kappa": 32767,
    "bonds_penalty": 65535,
    "bonds_moving_avg": 900_000,
    "yuma3_enabled": False,
    "liquid_alpha_enabled": False,
    "alpha_low": 45875,
    "alpha_high": 58982,
    "alpha_sigmoid_steepness": 1000,
    "activity_cutoff_factor_milli": 13889,
    "max_allowed_validators": 64,
    "stake_threshold": 0,
    "tao_weight": 0,
    "emission": 1_000_000_000,
    # add_network's defaults for the rules after spec 425 that the engine models as columns: these
    # three keep every spec-425 vector as it was (mask off, liquid alpha reads the current consensus).
    "commit_reveal_enabled": False,
    "liquid_alpha_consensus_mode": 0,
    "epoch_consensus": 0,
}


@dataclass
class Neuron:
    alpha_stake: int
    last_update: int = 0
    block_at_registration: int = 0
    validator_permit: bool = False
    tao_stake: int = 0
    previous_consensus: int | None = None
    commit_block: int | None = None

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in NEURON_FIELDS}


@dataclass
class EpochCase:
    """One epoch's inputs. weights/bonds: validator uid -> [(miner uid, u16)] in stored order."""

    block: int
    neurons: list[Neuron]
    weights: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    bonds: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    netuid: int = 1
    mechid: int = 0

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.netuid, self.mechid, self.block)

    def full_params(self) -> dict:
        return {**MOCK_PARAMS, **self.params}


@dataclass
class EpochResult:
    """One epoch's outputs: per-uid lists and bonds as {validator: {miner: u16}} (nonzero only)."""

    outputs: dict[str, list]
    bonds: dict[int, dict[int, int]]

    def __getattr__(self, name):  # result.dividends etc.
        try:
            return self.__dict__["outputs"][name]
        except KeyError:
            raise AttributeError(name) from None

    def bond(self, i: int, j: int) -> int:
        return self.bonds.get(i, {}).get(j, 0)


def frames_for(cases: list[EpochCase]):
    """The four input frames (epochs, neurons, weights, bonds) with the contract's exact dtypes."""
    epochs, neurons, weights, bonds = [], [], [], []
    for case in cases:
        key = {"netuid": case.netuid, "mechid": case.mechid, "block": case.block}
        p = case.full_params()
        epochs.append({**key, **{c: p[c] for c in EPOCHS.columns if c not in key}})
        for uid, nd in enumerate(case.neurons):
            neurons.append({**key, "uid": uid, **nd.as_dict()})
        for i, row in case.weights.items():
            for j, w in row:
                weights.append({**key, "validator_uid": i, "miner_uid": j, "weight": w})
        for i, row in case.bonds.items():
            for j, b in row:
                bonds.append({**key, "validator_uid": i, "miner_uid": j, "bond": b})
    return (pl.DataFrame(epochs, schema=EPOCHS.polars_schema()),
            pl.DataFrame(neurons, schema=EPOCH_NEURONS.polars_schema()),
            pl.DataFrame(weights, schema=EPOCH_WEIGHTS.polars_schema()),
            pl.DataFrame(bonds, schema=EPOCH_BONDS.polars_schema()))


def split_outputs(cases: list[EpochCase], neurons_out: pl.DataFrame, bonds_out: pl.DataFrame) -> list[EpochResult]:
    """Cut the output frames back into one EpochResult per case (by epoch key, uid order)."""
    results = []
    for case in cases:
        key = (pl.col("netuid") == case.netuid) & (pl.col("mechid") == case.mechid) & (pl.col("block") == case.block)
        rows = neurons_out.filter(key).sort("uid")
        assert rows["uid"].to_list() == list(range(len(case.neurons))), (
            f"epoch {case.key}: output uids {rows['uid'].to_list()} are not 0..{len(case.neurons) - 1}")
        outputs = {f: rows[f].to_list() for f in OUTPUT_FIELDS}
        bonds: dict[int, dict[int, int]] = {}
        for r in bonds_out.filter(key).iter_rows(named=True):
            assert r["miner_uid"] not in bonds.get(r["validator_uid"], {}), f"duplicate bond row {r}"
            bonds.setdefault(r["validator_uid"], {})[r["miner_uid"]] = r["bond"]
        results.append(EpochResult(outputs, bonds))
    return results


def run_engine(cases: list[EpochCase]) -> list[EpochResult]:
    from tasks.consensus import run_epochs

    frames = frames_for(cases)
    out = run_epochs(*frames)
    return split_outputs(cases, out.neurons, out.bonds)


def run_reference(cases: list[EpochCase]) -> list[EpochResult]:
    frames = frames_for(cases)
    neurons_out, bonds_out = run_frames(*frames)
    return split_outputs(cases, neurons_out, bonds_out)


RUNNERS = {"reference": run_reference, "engine": run_engine}


def run(runner: str, case: EpochCase) -> EpochResult:
    return RUNNERS[runner]([case])[0]


def upscale_weights(values: list[int]) -> list[int]:
    """What `set_weights` stores: the u16 values max-upscaled (spec §6), submission order, zeros kept."""
    return vec_max_upscale_to_u16([from_int(v) for v in values])


class Chain:
    """The chain state the epoch reads, advanced by the chain actions of yuma_vectors.md §0.

    `epoch()` runs one epoch through the chosen runner and stores what the chain stores afterwards:
    the new bonds (rows of new permit holders; other rows emptied) and the new permits.
    """

    def __init__(self, runner: str, stakes: list[int], block: int, registered: int | list[int] = 0,
                 permits: list[bool] | None = None, params: dict | None = None, netuid: int = 1):
        n = len(stakes)
        reg = registered if isinstance(registered, list) else [registered] * n
        self.runner = runner
        self.block = block
        self.neurons = [Neuron(alpha_stake=s, last_update=r, block_at_registration=r,
                               validator_permit=bool(permits[i]) if permits else False)
                        for i, (s, r) in enumerate(zip(stakes, reg, strict=True))]
        self.weights: dict[int, list[tuple[int, int]]] = {}
        self.bonds: dict[int, list[tuple[int, int]]] = {}
        self.params = dict(params or {})
        self.netuid = netuid
        self.history: list[EpochResult] = []

    @property
    def n(self) -> int:
        return len(self.neurons)

    def next_block(self, count: int = 1) -> None:
        self.block += count

    def set_weights(self, uid: int, uids: list[int], values: list[int]) -> None:
        self.weights[uid] = list(zip(uids, upscale_weights(values), strict=True))
        self.neurons[uid].last_update = self.block

    def replace(self, uid: int, stake: int) -> None:
        """`replace_neuron` at the current block (spec §6 deregistration)."""
        self.weights.pop(uid, None)
        self.bonds.pop(uid, None)
        for i, row in self.weights.items():
            self.weights[i] = [(j, 0 if j == uid else w) for j, w in row]
        self.neurons[uid] = Neuron(alpha_stake=stake, last_update=self.block,
                                   block_at_registration=self.block, validator_permit=False)

    def reset_bond_column(self, uid: int) -> None:
        """`do_reset_bonds`: remove column uid from every bond row."""
        self.bonds = {i: [(j, b) for j, b in row if j != uid] for i, row in self.bonds.items()}

    def case(self) -> EpochCase:
        return EpochCase(block=self.block, neurons=copy.deepcopy(self.neurons),
                         weights=copy.deepcopy(self.weights), bonds=copy.deepcopy(self.bonds),
                         params=dict(self.params), netuid=self.netuid)

    def epoch(self) -> EpochResult:
        result = run(self.runner, self.case())
        self.bonds = {i: sorted(row.items()) for i, row in result.bonds.items()}
        for uid, nd in enumerate(self.neurons):
            nd.validator_permit = bool(result.validator_permit[uid])
        self.history.append(result)
        return result
