"""`SimChain`: an in-process simulated Subtensor subnet, labelled as a simulation everywhere.

The embedded default chain (DESIGN.md §3) for the demo, tests and what-if studies. It implements the
same ChainClient and ChainWriter interface as the node-backed client (tasks/chain/interface.py), keeps
chain state over blocks and runs the real consensus engine (`tasks.consensus.run_epochs`) at each
tempo, so snapshot, backfill, push and the epoch flow run unchanged against it.

Sources (`open_chain`): `sim` (seed 0), `sim:SEED`, `sim:SEED@STATE_FILE` (load STATE_FILE if it
exists, else create from SEED and play the default scenario; `close()` saves back to STATE_FILE).

Blocks. The head is the last sealed block. Every write is included in the NEXT block: a write on its
own seals one new block (like an instant-seal dev node); writes inside `with sim.block():` share one
block; `advance(n)` seals n blocks. Inside block b, as on chain (yuma_spec.md §8, inputs.py):
  1. the epochs that fall due (b − last epoch block ≥ tempo) run on the state left by block b − 1,
     with E = the subnet's pending emission at b − 1; their outputs (consensus, incentive, dividends,
     validator trust, emission, active, new permits, new bonds) are stored at b, emissions are paid
     into stake and `last_mechanism_step_block` = b;
  2. block b's own alpha emission is injected (after the drain, so no block's emission is lost; a real
     chain injects first and drains E including block b's share, which no snapshot shows):
     `alpha_emission_per_block` minus the owner cut (SubnetOwnerCut / 65535) into pending emission;
     the owner cut is staked to the owner hotkey at the next epoch (spec §5.1 point 4, §5.2 point 6);
  3. the block's extrinsics apply in order (a failed one is included with `System.ExtrinsicFailed`
     and changes nothing, as on chain).
So a snapshot at P is exactly the engine input of the epoch at P + 1 (tasks.consensus.inputs).

Commit-reveal (`commit_reveal_enabled`): set_weights fails with CommitRevealEnabled as on chain, and a
timelocked commit (`commit_weights`) is revealed by the simulation when its reveal epoch begins (the
commit's epoch + `reveal_period_epochs`), then set as set_weights would. The drand beacon is the one
fake: its round is computed from the simulated clock, and no ciphertext is made (labelled so).

Simplifications (documented, not hidden): one mechanism per subnet (mechid 0); no hash commit-reveal;
no child keys, delegation takes or nominators (a hotkey's emission is staked to that hotkey);
registration is free and unlimited per block; no serving rate limit; the pruning score is the uid's
emission (immune uids and the owner's hotkey spared while another candidate exists, ties to the
lowest uid); TaoWeight and StakeThreshold are chain-global (`set_hyperparameter(None, …)`).
Blocks are 12 s apart from 2025-01-01T00:00:00Z; spec_version is 343, the runtime whose rules it follows.

Fake hashes: every block hash is `0x5157` + 60 hex digits of blake2b("sim|SEED|block|N"); every
extrinsic hash is `0x5157` + 60 hex digits of blake2b over (seed, block, index in block, call,
signer). The 0x5157 prefix ("5IM") marks them as simulated, and `blocks.source` says "(simulation)".

The default scenario (sim_scenario.py) is played for a new `sim:SEED` (once per process and seed;
each `open` gets an independent fork); afterwards its autopilot keeps the background validators
setting weights as the chain advances (`scenario["autopilot"]`).

History: state versions are immutable (frames are never mutated, only replaced), kept with the block
that produced them; a past block resolves to its version by bisection. Pending emission grows
linearly between versions and is derived, so an empty block costs no version.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import ipaddress
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from schemas import chain as tables
from schemas import consensus as contract
from schemas.consensus import consensus_mode_code
from tasks.chain.errors import ChainError
from tasks.chain.interface import PARTS, Commit, Snapshot, Submission, check_parts
from tasks.consensus.commit_window import earliest_unexpired_commit_blocks
from tasks.consensus.schedule import EpochSchedule, epochs_of_block
from tasks.weights.convert import chain_stored_row

U16_MAX = 65_535
U64_MAX = (1 << 64) - 1
RAO_PER_ALPHA = 10**9
SIM_HASH_PREFIX = "0x5157"
SIM_SPEC_VERSION = 343  # the runtime whose rules the simulation follows (chain_interface.md §1)
GENESIS_TIMESTAMP_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z, block 0
BLOCK_TIME_MS = 12_000
ALICE_URI = "//Alice"
DEFAULT_NETUID = 1
STATE_FORMAT = "yumaflow-sim/1"
SIM_COMMIT_REVEAL_VERSION = 4  # CommitRevealWeightsVersion of the runtime the simulation follows
MAX_UNREVEALED_COMMITS = 10
# The drand beacon is the one fake at the edge of the simulation: no pulse is fetched; a timelocked
# commit's round is the quicknet round due at its reveal block's time, and the simulation reveals the
# commit (it keeps the row it was given) when its reveal epoch starts, as the chain does with the pulse.
DRAND_QUICKNET_GENESIS_S = 1_692_803_367
DRAND_QUICKNET_PERIOD_S = 3

#: Subnet hyperparameters of a new simulated subnet: the runtime's defaults (yuma_spec.md §7), with a
#: short tempo and limits scaled to it so that a demo sees epochs, replacements and rate limits quickly.
DEFAULT_HYPERPARAMETERS: dict[str, object] = {
    "tempo": 20,
    "kappa": 32_767,
    "bonds_penalty": 65_535,
    "bonds_moving_avg": 900_000,
    "yuma3_enabled": True,
    "liquid_alpha_enabled": False,
    "alpha_low": 45_875,
    "alpha_high": 58_982,
    "alpha_sigmoid_steepness": 1_000,
    "activity_cutoff": 5_000,  # legacy item, not read by the epoch
    "activity_cutoff_factor_milli": 13_889,  # cutoff = ⌊13889·20/1000⌋ = 277 blocks
    "max_allowed_validators": 8,
    "max_allowed_uids": 64,
    "min_allowed_weights": 1,
    "max_weight_limit": 65_535,
    "weights_version": 0,
    "weights_rate_limit": 5,
    "immunity_period": 100,
    "commit_reveal_enabled": False,
    "reveal_period_epochs": 1,  # RevealPeriodEpochs: a commit is revealed this many epochs later
    "bonds_reset_enabled": False,
    # LiquidAlphaConsensusMode, by variant name: Auto is the chain's default for every subnet
    "liquid_alpha_consensus_mode": "Auto",
    "mechanism_count": 1,
    "alpha_emission_per_block": RAO_PER_ALPHA,  # alpha_out per block, before the owner cut (§5.1)
    "owner_cut": 11_796,  # SubnetOwnerCut, u16 / 65535 (≈ 18 %)
}
#: Chain-global items (one value for every subnet).
MAX_EPOCHS_PER_BLOCK = 2  # the runtime's default MaxEpochsPerBlock
DEFAULT_GLOBALS: dict[str, int] = {"tao_weight": 971_718_665_099_567_868, "stake_threshold": 0,
                                   "max_epochs_per_block": MAX_EPOCHS_PER_BLOCK}

# Per-uid columns the simulation stores; stakes live per hotkey and are joined in at snapshot time.
_NEURON_SCHEMA = {c: t for c, t in tables.NEURONS.polars_schema().items()
                  if c not in ("netuid", "block", "alpha_stake", "tao_stake", "total_stake", "commit_block")}
_WEIGHT_SCHEMA = {"mechid": pl.UInt8, "validator_uid": pl.UInt16, "miner_uid": pl.UInt16, "weight": pl.UInt16}
_BOND_SCHEMA = {"mechid": pl.UInt8, "validator_uid": pl.UInt16, "miner_uid": pl.UInt16, "bond": pl.UInt16}
_ALPHA_SCHEMA = {"hotkey": pl.String, "alpha_stake": pl.UInt64}
_TAO_SCHEMA = {"hotkey": pl.String, "tao_stake": pl.UInt64}
_FRAME_SCHEMAS = {"neurons": _NEURON_SCHEMA, "weights": _WEIGHT_SCHEMA, "bonds": _BOND_SCHEMA,
                  "alpha_stakes": _ALPHA_SCHEMA, "tao_stakes": _TAO_SCHEMA}
_EPOCH_OUTPUT_COLUMNS = ("consensus", "incentive", "dividends", "validator_trust", "emission", "active",
                         "validator_permit")


class SimRejected(ChainError):
    """A sim-only call (register, add_stake, …) that the chain would reject; `error` is the pallet error."""

    def __init__(self, error: str, what: str):
        self.error = error
        super().__init__(f"{error}: {what}")


# ---------------------------------------------------------------- the chain's own arithmetic

def sim_drand_round(block: int) -> int:
    """The drand quicknet round due at the simulated time of `block` (the simulation's fake beacon)."""
    seconds = (GENESIS_TIMESTAMP_MS + BLOCK_TIME_MS * block) // 1000
    return (seconds - DRAND_QUICKNET_GENESIS_S) // DRAND_QUICKNET_PERIOD_S + 1


def max_weight_limited(upscaled: Sequence[int], max_weight_limit: int) -> bool:
    """`check_vec_max_limited`: the row normalised in I32F32 (x ⊘ Σx, truncated) has max ≤ limit ⊘ 65535."""
    total = sum(upscaled)
    if max_weight_limit == U16_MAX or total == 0:
        return True
    return (max(upscaled) << 32) // total <= (max_weight_limit << 32) // U16_MAX


def _signer(hotkey) -> str:
    """The ss58 address a substrate-interface Keypair signs as."""
    address = getattr(hotkey, "ss58_address", None)
    if not isinstance(address, str):
        raise TypeError(f"expected a substrate-interface Keypair to sign with, got {type(hotkey).__name__}")
    return address


def sim_hash(*parts: object) -> str:
    """A deterministic fake 32-byte hash, marked by the 0x5157 prefix."""
    digest = hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=30).hexdigest()
    return SIM_HASH_PREFIX + digest


# ---------------------------------------------------------------- state

@dataclass(frozen=True)
class SubnetState:
    """One subnet's state after some block. Frames are never mutated: a change makes a new state.

    params: hyperparameters (DEFAULT_HYPERPARAMETERS keys) and scalars: owner_hotkey, owner_coldkey,
    last_mechanism_step_block, last_epoch_block, pending_carry / pending_from (pending emission at
    block B is pending_carry + (B − pending_from)·per-block injection), owner_cut_carry /
    owner_cut_from (the owner cut owed, the same way).
    neurons: one row per uid (0..n−1). weights / bonds: one row per stored edge, a validator's row in
    submission order. alpha_stakes: one row per hotkey with alpha on this subnet (registered or not).
    """

    params: dict
    neurons: pl.DataFrame
    weights: pl.DataFrame
    bonds: pl.DataFrame
    alpha_stakes: pl.DataFrame

    def with_params(self, **changes) -> SubnetState:
        return replace(self, params={**self.params, **changes})

    def per_block_injection(self) -> tuple[int, int]:
        """(pending emission, owner cut) added per block, rao (§5.1: cut = ⌊alpha_out·cut/65535⌋)."""
        alpha_out = int(self.params["alpha_emission_per_block"])
        cut = alpha_out * int(self.params["owner_cut"]) // U16_MAX
        return alpha_out - cut, cut

    def pending_emission(self, block: int) -> int:
        injection, _ = self.per_block_injection()
        return int(self.params["pending_carry"]) + (block - int(self.params["pending_from"])) * injection

    def owner_uid(self) -> int | None:
        hit = self.neurons.filter(pl.col("hotkey") == self.params["owner_hotkey"])
        return int(hit["uid"][0]) if hit.height else None

    def uid_of(self, hotkey: str) -> int | None:
        hit = self.neurons.filter(pl.col("hotkey") == hotkey)
        return int(hit["uid"][0]) if hit.height else None


@dataclass(frozen=True)
class WorldState:
    """Every subnet plus chain-global items (TaoWeight, StakeThreshold, root TAO stake per hotkey)."""

    subnets: dict[int, SubnetState]
    globals: dict
    tao_stakes: pl.DataFrame

    def with_subnet(self, netuid: int, subnet: SubnetState) -> WorldState:
        return replace(self, subnets={**self.subnets, netuid: subnet})


def _empty(kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=_FRAME_SCHEMAS[kind])


def _set_uid(frame: pl.DataFrame, uid: int, **values) -> pl.DataFrame:
    """`frame` with the given columns of row `uid` replaced (typed as the frame's columns)."""
    at = pl.col("uid") == uid
    return frame.with_columns(*[pl.when(at).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c)
                                for c, v in values.items()])


def _add_stake(stakes: pl.DataFrame, credits: pl.DataFrame, column: str) -> pl.DataFrame:
    """stakes (hotkey, column) plus credits (hotkey, amount) summed per hotkey; new hotkeys appended."""
    credits = credits.group_by("hotkey", maintain_order=True).agg(pl.col("amount").sum().cast(pl.UInt64))
    return (stakes.join(credits, on="hotkey", how="full", coalesce=True, maintain_order="left_right")
            .select("hotkey", (pl.col(column).fill_null(0) + pl.col("amount").fill_null(0)).cast(pl.UInt64)
                    .alias(column)))


# ---------------------------------------------------------------- the chain

_PLAYED: dict[tuple[int, int], SimChain] = {}  # the default scenario per (seed, tempos), see SimChain.open
_PLAYED_LOCK = threading.Lock()
SOURCE_PATTERN = re.compile(r"^sim(?::(?P<seed>\d+)?(?:@(?P<state>.+))?)?$")


def _scenario_text(sim: SimChain) -> str:
    return json.dumps(sim.scenario, sort_keys=True)


def parse_sim_source(source: str) -> tuple[int, str | None]:
    """`sim` → (0, None); `sim:7` → (7, None); `sim:7@path.json` → (7, 'path.json')."""
    match = SOURCE_PATTERN.match(source)
    if not match:
        raise ValueError(f"chain source {source!r}: expected sim, sim:SEED or sim:SEED@STATE_FILE "
                         f"(SEED a non-negative integer)")
    return int(match["seed"] or 0), match["state"]


@dataclass
class _OpenBlock:
    number: int
    extrinsics: int = 0


class SimChain:
    """A simulated Subtensor chain: ChainClient + ChainWriter, plus sim-only helpers.

    `SimChain(seed)` starts at genesis (block 0) with subnet `DEFAULT_NETUID` created and empty;
    `SimChain.open(source)` parses a `sim…` source and plays the default scenario for a new chain.
    """

    def __init__(self, seed: int = 0, *, source: str | None = None, netuids: Sequence[int] = (DEFAULT_NETUID,)):
        self.seed = int(seed)
        self.source = source or f"sim:{self.seed}"
        self.state_file: str | None = None
        self.scenario: dict = {}  # the default scenario's bookkeeping (sim_scenario.py), saved with the state
        self._keypairs: dict[str, object] = {}
        self._lock = threading.RLock()
        self._head = 0
        self._open: _OpenBlock | None = None
        self._state = WorldState(subnets={}, globals=dict(DEFAULT_GLOBALS), tao_stakes=_empty("tao_stakes"))
        for netuid in netuids:
            self._state = self._state.with_subnet(netuid, self._new_subnet(netuid, 0, {}))
        self._blocks: list[int] = [0]
        self._versions: list[WorldState] = [self._state]
        self._saved: tuple | None = None  # (head, state, scenario) as last read from or written to the state file

    # -- construction from a source ---------------------------------------------------------------

    @classmethod
    def open(cls, source: str = "sim", *, scenario_tempos: int | None = None) -> SimChain:
        """The chain for a `sim…` source: loaded from its state file if that exists, else created from
        the seed with the default scenario played (and saved to the state file on close())."""
        from tasks.simnet.scenario import DEFAULT_TEMPOS, play_default_scenario

        seed, state_file = parse_sim_source(source)
        if state_file and os.path.exists(state_file):
            sim = cls.load(state_file, source=source)
        else:
            tempos = DEFAULT_TEMPOS if scenario_tempos is None else scenario_tempos
            # Played once per process and (seed, tempos); every open gets its own fork of it, so a
            # backfill whose chunks each open the source does not replay the scenario per chunk.
            with _PLAYED_LOCK:
                if (seed, tempos) not in _PLAYED:
                    played = cls(seed)
                    play_default_scenario(played, tempos=tempos)
                    _PLAYED[(seed, tempos)] = played
                sim = _PLAYED[(seed, tempos)].fork(source=source)
        sim.state_file = state_file
        return sim

    def fork(self, *, source: str | None = None) -> SimChain:
        """An independent chain with this one's history and head (versions are immutable, so shared)."""
        with self._lock:
            if self._open is not None:
                raise RuntimeError("fork inside `with sim.block()`: seal the block first")
            other = copy.copy(self)
            other.source = source or self.source
            other.state_file = None
            other.scenario = copy.deepcopy(self.scenario)
            other._lock = threading.RLock()
            other._blocks, other._versions = list(self._blocks), list(self._versions)
            return other

    def _new_subnet(self, netuid: int, block: int, hyperparameters: dict) -> SubnetState:
        if hyperparameters.get("mechanism_count", 1) != 1:
            raise ValueError("the simulation runs one mechanism per subnet (mechanism_count 1)")
        unknown = set(hyperparameters) - set(DEFAULT_HYPERPARAMETERS)
        if unknown:
            raise ValueError(f"subnet {netuid}: unknown hyperparameter(s) {sorted(unknown)}; "
                             f"known: {', '.join(DEFAULT_HYPERPARAMETERS)}")
        owner, owner_cold = self.keypair("owner", netuid), self.keypair("owner", netuid, coldkey=True)
        params = {**DEFAULT_HYPERPARAMETERS, **hyperparameters,
                  "owner_hotkey": owner.ss58_address, "owner_coldkey": owner_cold.ss58_address,
                  "last_mechanism_step_block": 0, "last_epoch_block": block,
                  "pending_carry": 0, "pending_from": block, "owner_cut_carry": 0, "owner_cut_from": block}
        return SubnetState(params=params, neurons=_empty("neurons"), weights=_empty("weights"),
                           bonds=_empty("bonds"), alpha_stakes=_empty("alpha_stakes"))

    # -- keys -------------------------------------------------------------------------------------

    def keypair(self, role: str, i: int, *, coldkey: bool = False):
        """A deterministic sr25519 Keypair: `//sim/<seed>/<role>/<i>` (its coldkey: `…/coldkey`).

        Validator 0 is //Alice (coldkey //Alice//coldkey), the demo's own validator, so
        `--hotkey-uri //Alice` signs as uid 0 of the default scenario.
        """
        from substrateinterface import Keypair

        if role == "validator" and i == 0:
            uri = ALICE_URI + ("//coldkey" if coldkey else "")
        else:
            uri = f"//sim/{self.seed}/{role}/{i}" + ("/coldkey" if coldkey else "")
        if uri not in self._keypairs:
            self._keypairs[uri] = Keypair.create_from_uri(uri)
        return self._keypairs[uri]

    # -- blocks -----------------------------------------------------------------------------------

    def head_block(self, finalized: bool = True) -> int:
        """The last sealed block (the simulation finalizes instantly: best = finalized)."""
        return self._head

    def block_hash(self, block: int) -> str:
        self._check_block(block)
        return sim_hash("sim", self.seed, "block", block)

    def _check_block(self, block: int) -> None:
        if not isinstance(block, int) or block < 0 or block > self._head:
            raise ChainError(f"block {block} not found on {self.source} (simulation head is {self._head})")

    @staticmethod
    def _schedule(subnet: SubnetState) -> EpochSchedule:
        p = subnet.params
        return EpochSchedule(tempo=int(p["tempo"]), last_epoch_block=int(p["last_epoch_block"]),
                             pending_epoch_at=int(p.get("pending_epoch_at", 0)),
                             blocks_since_last_step=int(p.get("blocks_since_last_step", 0)),
                             subnet_epoch_index=int(p.get("subnet_epoch_index", 0)))

    def netuids(self) -> list[int]:
        """The subnets that exist now."""
        return sorted(self._state.subnets)

    def last_epoch_block(self, netuid: int) -> int:
        """The block of the subnet's last epoch slot so far (inside an open block: including its own)."""
        return int(self._subnet(netuid).params["last_epoch_block"])

    def _begin_block(self) -> int:
        if self._open is None:
            b = self._head + 1
            world = self._state
            # The chain's schedule (drain_pending_subnet_emissions): which due epochs run in this block, which
            # the per-block cap defers; every epoch runs on the state left by b − 1, then the slots advance.
            schedules = [(netuid, self._schedule(world.subnets[netuid])) for netuid in sorted(world.subnets)]
            plan = epochs_of_block(schedules, b, int(world.globals.get("max_epochs_per_block", MAX_EPOCHS_PER_BLOCK)))
            for netuid in plan.run:
                world = self._run_epoch(world, netuid, b)
            for netuid, schedule in plan.schedules.items():
                world = world.with_subnet(netuid, world.subnets[netuid].with_params(
                    last_epoch_block=schedule.last_epoch_block, pending_epoch_at=schedule.pending_epoch_at,
                    blocks_since_last_step=schedule.blocks_since_last_step,
                    subnet_epoch_index=schedule.subnet_epoch_index))
            self._state = world
            for netuid in sorted(world.subnets):
                self._reveal_due_commits(netuid, b)
            self._open = _OpenBlock(b)
            if self.scenario.get("autopilot"):  # the default scenario's background validators act first
                from tasks.simnet.scenario import autopilot_block

                autopilot_block(self, b)
        return self._open.number

    def _seal_block(self) -> None:
        b, extrinsics = self._open.number, self._open.extrinsics
        if self._state is not self._versions[-1]:
            self._blocks.append(b)
            self._versions.append(self._state)
        self._head, self._open = b, None
        if extrinsics and self.state_file:
            # As on chain, an included extrinsic is final once its block is sealed, even if the client
            # dies the next moment: a validator killed after pushing must find its weights on chain.
            self.save(self.state_file)

    @contextmanager
    def block(self) -> Iterator[int]:
        """Every write inside goes into one new block (its number is yielded), sealed on exit.
        Writers from several threads are serialised (reads need no lock: versions are immutable)."""
        with self._lock:
            if self._open is not None:  # nested: the outer block seals
                yield self._open.number
                return
            try:
                yield self._begin_block()
            finally:
                if self._open is not None:
                    self._seal_block()

    @contextmanager
    def genesis(self) -> Iterator[int]:
        """Writes inside go into the genesis state (block 0), like a chain spec's genesis config.
        Only on a fresh chain (head 0); no epoch runs and no emission is injected at genesis."""
        with self._lock:
            if self._head != 0 or len(self._versions) != 1 or self._open is not None:
                raise RuntimeError(f"genesis: {self.source} is past genesis (head {self._head})")
            self._open = _OpenBlock(0)
            try:
                yield 0
            finally:
                self._versions[0], self._open = self._state, None

    def advance(self, blocks: int = 1) -> int:
        """Seal `blocks` blocks (running the epochs that fall due); returns the new head."""
        if blocks < 0:
            raise ValueError(f"advance: blocks must be >= 0, got {blocks}")
        with self._lock:
            if self._open is not None:
                raise RuntimeError("advance inside `with sim.block()`: the open block seals on exit")
            for _ in range(blocks):
                self._begin_block()
                self._seal_block()
            return self._head

    def _subnet(self, netuid: int, world: WorldState | None = None) -> SubnetState:
        subnet = (world or self._state).subnets.get(netuid)
        if subnet is None:
            raise SimRejected("SubtensorModule.SubnetNotExists", f"subnet {netuid} does not exist on {self.source}")
        return subnet

    def _state_at(self, block: int) -> WorldState:
        self._check_block(block)
        return self._versions[bisect.bisect_right(self._blocks, block) - 1]

    # -- the epoch --------------------------------------------------------------------------------

    def epoch_inputs(self, world: WorldState, netuid: int, block: int) -> dict[str, pl.DataFrame]:
        """The engine's four input tables (DESIGN.md §5) of the epoch at `block`, from `world` (the state
        left by block − 1): exactly what tasks.consensus.inputs derives from a snapshot at block − 1."""
        subnet = world.subnets[netuid]
        p = subnet.params
        key = {"netuid": netuid, "mechid": 0, "block": block}
        epochs = pl.DataFrame([{
            **key, **{c: p[c] for c in ("tempo", "kappa", "bonds_penalty", "bonds_moving_avg", "yuma3_enabled",
                                        "liquid_alpha_enabled", "alpha_low", "alpha_high", "alpha_sigmoid_steepness",
                                        "activity_cutoff_factor_milli", "max_allowed_validators",
                                        "last_mechanism_step_block")},
            "owner_uid": subnet.owner_uid(), "stake_threshold": world.globals["stake_threshold"],
            "tao_weight": world.globals["tao_weight"], "emission": subnet.pending_emission(block - 1),
            "commit_reveal_enabled": p["commit_reveal_enabled"],
            "liquid_alpha_consensus_mode": consensus_mode_code(p["liquid_alpha_consensus_mode"]),
        }], schema=contract.EPOCHS.polars_schema())
        stakes = self._stakes(world, subnet)
        # The stored Consensus (the last epoch's) is what liquid alpha's previous mode reads.
        neurons = stakes.select(*[pl.lit(v).alias(k) for k, v in key.items()], "uid", "alpha_stake", "tao_stake",
                                "last_update", "block_at_registration", "validator_permit",
                                pl.col("consensus").alias("previous_consensus"), "commit_block")
        weights = subnet.weights.sort("validator_uid", "miner_uid").select(
            *[pl.lit(v).alias(k) for k, v in key.items() if k != "mechid"], "mechid", "validator_uid", "miner_uid",
            "weight")
        bonds = subnet.bonds.select(*[pl.lit(v).alias(k) for k, v in key.items() if k != "mechid"], "mechid",
                                    "validator_uid", "miner_uid", "bond")

        def typed(frame, table):
            return frame.select([pl.col(c).cast(t) for c, t in table.polars_schema().items()])

        return {"epochs": epochs, "neurons": typed(neurons, contract.EPOCH_NEURONS),
                "weights": typed(weights, contract.EPOCH_WEIGHTS), "bonds": typed(bonds, contract.EPOCH_BONDS)}

    def _run_epoch(self, world: WorldState, netuid: int, b: int) -> WorldState:
        """The epoch at block b on `world` (the state left by b − 1), outputs stored and paid (spec §2, §5.2)."""
        from tasks.consensus import run_epochs

        subnet = world.subnets[netuid]
        if subnet.neurons.height == 0:  # nothing to run: the slot passes, pending emission carries over (§8)
            return world
        inputs = self.epoch_inputs(world, netuid, b)
        result = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
        neurons = (subnet.neurons.drop(_EPOCH_OUTPUT_COLUMNS)
                   .join(result.neurons.select("uid", *_EPOCH_OUTPUT_COLUMNS, "server_emission", "validator_emission"),
                         on="uid", how="left", maintain_order="left"))
        bonds = result.bonds.select("mechid", "validator_uid", "miner_uid", "bond")

        # §5.2: server emission is staked to the miner's hotkey, except the owner's (burned); validator
        # emission to the validator's hotkey; the owner cut accumulated up to b − 1 to the owner hotkey.
        p = subnet.params
        owned_by_owner = (pl.col("hotkey") == p["owner_hotkey"]) | (pl.col("coldkey") == p["owner_coldkey"])
        _, cut_per_block = subnet.per_block_injection()
        owner_cut_rao = int(p["owner_cut_carry"]) + (b - 1 - int(p["owner_cut_from"])) * cut_per_block
        credits = pl.concat([
            neurons.select("hotkey", pl.when(owned_by_owner).then(0).otherwise(pl.col("server_emission"))
                           .cast(pl.UInt64).alias("amount")),
            neurons.select("hotkey", pl.col("validator_emission").cast(pl.UInt64).alias("amount")),
            pl.DataFrame({"hotkey": [p["owner_hotkey"]], "amount": [owner_cut_rao]},
                         schema={"hotkey": pl.String, "amount": pl.UInt64}),
        ]).filter(pl.col("amount") > 0)
        stakes = _add_stake(subnet.alpha_stakes, credits, "alpha_stake")
        paid = SubnetState(
            params={**p, "last_mechanism_step_block": b, "pending_carry": 0,
                    "pending_from": b - 1, "owner_cut_carry": 0, "owner_cut_from": b - 1},
            neurons=neurons.select(list(_NEURON_SCHEMA)), weights=subnet.weights, bonds=bonds, alpha_stakes=stakes)
        return world.with_subnet(netuid, paid)

    # -- reads ------------------------------------------------------------------------------------

    @staticmethod
    def _stakes(world: WorldState, subnet: SubnetState) -> pl.DataFrame:
        """The subnet's neurons with alpha_stake, tao_stake and total_stake = α + τ·TaoWeight/(2^64−1)
        (rao, floored, as the node-backed client computes it), and each uid's unexpired commit block."""
        tao_weight = int(world.globals["tao_weight"])
        p = subnet.params
        commit_blocks = earliest_unexpired_commit_blocks(
            {}, [(c["commit_epoch"], c["hotkey"], c["commit_block"]) for c in p.get("commits") or []],
            int(p.get("subnet_epoch_index", 0)) + 1, int(p.get("reveal_period_epochs", 1)))
        return (subnet.neurons
                .with_columns(pl.col("hotkey").replace_strict(commit_blocks, default=None, return_dtype=pl.UInt64)
                              .alias("commit_block"))
                .join(subnet.alpha_stakes, on="hotkey", how="left", maintain_order="left")
                .join(world.tao_stakes, on="hotkey", how="left", maintain_order="left")
                .with_columns(pl.col("alpha_stake").fill_null(0), pl.col("tao_stake").fill_null(0))
                .with_columns((pl.col("alpha_stake").cast(pl.Int128)
                               + pl.col("tao_stake").cast(pl.Int128) * tao_weight // U64_MAX)
                              .cast(pl.UInt64).alias("total_stake")))

    def snapshot(self, netuid: int, block: int, parts: tuple[str, ...] = PARTS) -> Snapshot:
        """Read `parts` of subnet `netuid` as it was after block `block` (any block up to the head)."""
        parts = check_parts(parts)
        world = self._state_at(block)
        subnet = world.subnets.get(netuid)
        if subnet is None:
            raise ChainError(f"subnet {netuid} does not exist at block {block} on {self.source}")
        block_hash = self.block_hash(block)
        at = [pl.lit(netuid, pl.UInt16).alias("netuid"), pl.lit(block, pl.UInt64).alias("block")]
        out: dict[str, pl.DataFrame] = {}
        if "blocks" in parts:
            out["blocks"] = pl.DataFrame({
                "block": [block], "block_hash": [block_hash], "spec_version": [SIM_SPEC_VERSION],
                "timestamp_ms": [GENESIS_TIMESTAMP_MS + BLOCK_TIME_MS * block],
                "source": [f"{self.source} (simulation)"]}, schema=tables.BLOCKS.polars_schema())
        if "subnets" in parts:
            p = subnet.params
            row = {c: p.get(c) for c in tables.SUBNETS.columns}
            row.update(netuid=netuid, block=block, subnetwork_n=subnet.neurons.height, owner_uid=subnet.owner_uid(),
                       pending_emission=subnet.pending_emission(block), **world.globals,
                       # the schedule and commit-reveal items the simulation keeps (null: not simulated)
                       subnet_epoch_index=int(p.get("subnet_epoch_index", 0)),
                       blocks_since_last_step=int(p.get("blocks_since_last_step", 0)),
                       pending_epoch_at=int(p.get("pending_epoch_at", 0)),
                       commit_reveal_version=SIM_COMMIT_REVEAL_VERSION, mechanism_emission_split=[],
                       reveal_period_epochs=int(p.get("reveal_period_epochs", 1)),
                       bonds_reset_enabled=bool(p.get("bonds_reset_enabled", False)), epoch_consensus="Yuma")
            out["subnets"] = pl.DataFrame([row], schema=tables.SUBNETS.polars_schema())
        if "neurons" in parts:
            out["neurons"] = self._stakes(world, subnet).select(
                [(at[0] if c == "netuid" else at[1] if c == "block" else pl.col(c)).cast(t)
                 for c, t in tables.NEURONS.polars_schema().items()])
        for part, table in (("weights", tables.WEIGHTS), ("bonds", tables.BONDS)):
            if part in parts:
                frame = subnet.weights if part == "weights" else subnet.bonds
                out[part] = frame.with_columns(*at).select(table.columns)
        return Snapshot(netuid=netuid, block=block, block_hash=block_hash, spec_version=SIM_SPEC_VERSION,
                        **out).validate()

    def stake_of(self, netuid: int, hotkey_ss58: str, block: int | None = None) -> tuple[int, int]:
        """(alpha stake on the subnet, root TAO stake) of any hotkey, registered or not, at `block`
        (default the head), rao."""
        world = self._state_at(self._head if block is None else block)
        subnet = world.subnets.get(netuid)
        if subnet is None:
            raise ChainError(f"subnet {netuid} does not exist at block {block} on {self.source}")
        alpha = subnet.alpha_stakes.filter(pl.col("hotkey") == hotkey_ss58)["alpha_stake"]
        tao = world.tao_stakes.filter(pl.col("hotkey") == hotkey_ss58)["tao_stake"]
        return (int(alpha[0]) if len(alpha) else 0, int(tao[0]) if len(tao) else 0)

    def close(self) -> None:
        """Save the state back to the source's STATE_FILE (`sim:SEED@STATE_FILE`), if it has one and
        this client changed the chain: a reader (a backfill chunk) must not write back the state it
        loaded over what another process has added since (a weight push) — last writer would win."""
        unchanged = (self._saved is not None and self._saved[0] == self._head and self._saved[1] is self._state
                     and self._saved[2] == _scenario_text(self))
        if self.state_file and not unchanged:
            self.save(self.state_file)

    def __enter__(self) -> SimChain:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes (ChainWriter) ---------------------------------------------------------------------

    def _extrinsic(self, call: str, signer: str) -> tuple[int, str]:
        """Open (or join) the block the extrinsic goes into; its number and fake extrinsic hash."""
        b = self._begin_block()
        index = self._open.extrinsics
        self._open.extrinsics += 1
        return b, sim_hash("sim", self.seed, "extrinsic", b, index, call, signer)

    def set_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey,
                    mechid: int = 0) -> Submission:
        """`SubtensorModule.set_weights` (or set_mechanism_weights) signed by `hotkey` (a Keypair).

        Checked in the chain's order (chain_interface.md §6.2; CommitRevealEnabled is raised by the call
        itself before do_set_weights). On success the row is stored max-upscaled in submission order
        (spec §6), LastUpdate = the inclusion block, event WeightsSet. Included in the next block.
        """
        uids, weights = [int(u) for u in uids], [int(w) for w in weights]
        for name, values in (("uids", uids), ("weights", weights)):
            if any(not 0 <= v <= U16_MAX for v in values):
                raise ValueError(f"set_weights: {name} must be u16 (0..65535), got {values}")
        signer = _signer(hotkey)
        with self.block():
            b, extrinsic_hash = self._extrinsic("set_weights", signer)
            error = self._set_weights(netuid, uids, weights, int(version_key), signer, int(mechid), b)
        if error:
            return Submission(ok=False, block=b, extrinsic_hash=extrinsic_hash, events=("System.ExtrinsicFailed",),
                              error=error)
        return Submission(ok=True, block=b, extrinsic_hash=extrinsic_hash,
                          events=("SubtensorModule.WeightsSet", "System.ExtrinsicSuccess"))

    def _set_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, signer: str,
                     mechid: int, b: int, *, revealing: bool = False) -> str | None:
        """Apply set_weights to the open block's state; the pallet error name if the chain rejects it.
        revealing: the chain setting a revealed commit (no commit-reveal refusal, no rate limit)."""
        e = "SubtensorModule."
        if netuid == 0:
            return e + "CanNotSetRootNetworkWeights"
        subnet = self._state.subnets.get(netuid)
        if subnet is None:
            return e + "SubnetNotExists"
        p = subnet.params
        if p["commit_reveal_enabled"] and not revealing:
            return e + "CommitRevealEnabled"
        if len(uids) != len(weights):
            return e + "WeightVecNotEqualSize"
        if not 0 <= mechid < int(p["mechanism_count"]) or mechid != 0:  # one mechanism simulated
            return e + "MechanismDoesNotExist"
        n = subnet.neurons.height
        if len(uids) > n:
            return e + "UidsLengthExceedUidsInSubNet"
        uid = subnet.uid_of(signer)
        if uid is None:
            return e + "HotKeyNotRegisteredInSubNet"
        is_owner = signer == p["owner_hotkey"]
        me = self._stakes(self._state, subnet).row(uid, named=True)
        if not is_owner and me["total_stake"] < int(self._state.globals["stake_threshold"]):
            return e + "NotEnoughStakeToSetWeights"
        if int(p["weights_version"]) != 0 and version_key < int(p["weights_version"]):
            return e + "IncorrectWeightVersionKey"
        last_update = int(me["last_update"])
        if not revealing and last_update != 0 and b - last_update < int(p["weights_rate_limit"]):
            return e + "SettingWeightsTooFast"
        self_weight = len(uids) == 1 and uids[0] == uid
        if not (self_weight or is_owner or me["validator_permit"]):
            return e + "NeuronNoValidatorPermit"
        if len(set(uids)) != len(uids):
            return e + "DuplicateUids"
        if any(u >= n for u in uids):
            return e + "UidVecContainInvalidOne"
        if not self_weight and len(uids) < min(int(p["min_allowed_weights"]), n):
            return e + "WeightVecLengthIsLow"
        stored = chain_stored_row(weights)  # spec §6: the chain's own max-upscale, submission order
        if not self_weight and not max_weight_limited(stored, int(p["max_weight_limit"])):
            return e + "MaxWeightExceeded"
        row = pl.DataFrame({"mechid": [mechid] * len(uids), "validator_uid": [uid] * len(uids), "miner_uid": uids,
                            "weight": stored}, schema=_WEIGHT_SCHEMA)
        rows = (pl.concat([subnet.weights.filter(pl.col("validator_uid") != uid), row])
                .sort("validator_uid", maintain_order=True))
        subnet = replace(subnet, weights=rows, neurons=_set_uid(subnet.neurons, uid, last_update=b))
        self._state = self._state.with_subnet(netuid, subnet)
        return None

    def push_method(self, netuid: int) -> str:
        """How the subnet takes weights now: a timelocked commit where commit-reveal is on."""
        return "commit_timelocked" if self._subnet(netuid).params["commit_reveal_enabled"] else "set_weights"

    def commit_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey,
                       mechid: int = 0) -> Commit:
        """`commit_timelocked_mechanism_weights`: the row is held until its reveal epoch (the commit's epoch
        + reveal_period_epochs), then set as set_weights would (checks, max-upscale) in the first block of
        that epoch. Checked as the chain checks a commit: commit-reveal on, registered, rate limit, at
        most 10 unrevealed. The reveal round is the simulated drand round of the reveal block."""
        uids, weights = [int(u) for u in uids], [int(w) for w in weights]
        signer = _signer(hotkey)
        e = "SubtensorModule."
        with self.block():
            b, extrinsic_hash = self._extrinsic("commit_timelocked_mechanism_weights", signer)
            subnet = self._state.subnets.get(netuid)
            error, reveal_round = None, None
            if subnet is None:
                error = e + "SubnetNotExists"
            elif not subnet.params["commit_reveal_enabled"]:
                error = e + "CommitRevealDisabled"
            elif mechid != 0:
                error = e + "MechanismDoesNotExist"
            elif subnet.uid_of(signer) is None:
                error = e + "HotKeyNotRegisteredInSubNet"
            if error is None:
                p = subnet.params
                uid = subnet.uid_of(signer)
                last_update = int(subnet.neurons["last_update"][uid])
                commits = list(p.get("commits", []))
                if last_update != 0 and b - last_update < int(p["weights_rate_limit"]):
                    error = e + "CommittingWeightsTooFast"
                elif sum(c["hotkey"] == signer for c in commits) >= MAX_UNREVEALED_COMMITS:
                    error = e + "TooManyUnrevealedCommits"
                else:
                    period = int(p.get("reveal_period_epochs", 1))
                    commit_epoch = int(p.get("subnet_epoch_index", 0))
                    reveal_at = int(p["last_epoch_block"]) + period * int(p["tempo"])
                    reveal_round = sim_drand_round(reveal_at)
                    commits.append({"hotkey": signer, "commit_block": b, "commit_epoch": commit_epoch,
                                    "reveal_epoch": commit_epoch + period, "reveal_round": reveal_round,
                                    "uids": uids, "weights": weights, "version_key": int(version_key)})
                    subnet = replace(subnet, params={**p, "commits": commits},
                                     neurons=_set_uid(subnet.neurons, uid, last_update=b))
                    self._state = self._state.with_subnet(netuid, subnet)
        if error:
            failed = Submission(ok=False, block=b, extrinsic_hash=extrinsic_hash, events=("System.ExtrinsicFailed",),
                                error=error)
            return Commit(submission=failed, method="commit_timelocked", reveal_round=None, reveal_block=None,
                          salt=None)
        done = Submission(ok=True, block=b, extrinsic_hash=extrinsic_hash,
                          events=("SubtensorModule.TimelockedWeightsCommitted", "System.ExtrinsicSuccess"))
        return Commit(submission=done, method="commit_timelocked", reveal_round=reveal_round, reveal_block=None,
                      salt=None)

    def _reveal_due_commits(self, netuid: int, b: int) -> None:
        """At the start of block b: every commit whose reveal epoch has begun is set (a commit the chain
        would reject, e.g. from a hotkey deregistered since, is dropped as on chain)."""
        subnet = self._state.subnets[netuid]
        commits = subnet.params.get("commits") or []
        epoch = int(subnet.params.get("subnet_epoch_index", 0))
        due = [c for c in commits if c["reveal_epoch"] <= epoch]
        if not due:
            return
        self._state = self._state.with_subnet(netuid, subnet.with_params(
            commits=[c for c in commits if c["reveal_epoch"] > epoch]))
        for c in due:
            self._set_weights(netuid, c["uids"], c["weights"], c["version_key"], c["hotkey"], 0, b, revealing=True)

    def reveal_weights(self, netuid: int, uids: list[int], weights: list[int], salt: list[int], version_key: int,
                       hotkey) -> Submission:
        raise SimRejected("SubtensorModule.NoWeightsCommitFound",
                          "the simulation runs timelocked commit-reveal (revealed by the chain), not hash commits")

    def stored_weights(self, netuid: int, uid: int, block: int | None = None, mechid: int = 0) -> list:
        weights = self.snapshot(netuid, self._head if block is None else block, parts=("weights",)).weights
        row = weights.filter((pl.col("validator_uid") == uid) & (pl.col("mechid") == mechid))
        return list(zip(row["miner_uid"].to_list(), row["weight"].to_list(), strict=True))

    def serve_axon(self, netuid: int, ip: str, port: int, hotkey) -> Submission:
        """`SubtensorModule.serve_axon`: publish the hotkey's address (IPv4 or IPv6, protocol 4)."""
        signer = _signer(hotkey)
        with self.block():
            b, extrinsic_hash = self._extrinsic("serve_axon", signer)
            error = self._serve_axon(netuid, ip, int(port), signer)
        if error:
            return Submission(ok=False, block=b, extrinsic_hash=extrinsic_hash, events=("System.ExtrinsicFailed",),
                              error=error)
        return Submission(ok=True, block=b, extrinsic_hash=extrinsic_hash,
                          events=("SubtensorModule.AxonServed", "System.ExtrinsicSuccess"))

    def _serve_axon(self, netuid: int, ip: str, port: int, signer: str) -> str | None:
        e = "SubtensorModule."
        subnet = self._state.subnets.get(netuid)
        if subnet is None:
            return e + "SubnetNotExists"
        uid = subnet.uid_of(signer)
        if uid is None:
            return e + "HotKeyNotRegisteredInNetwork"
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return e + "InvalidIpAddress"
        if int(address) == 0:
            return e + "InvalidIpAddress"
        if not 0 < port <= U16_MAX:
            return e + "InvalidPort"
        neurons = _set_uid(subnet.neurons, uid, axon_ip=str(address), axon_port=port, axon_protocol=4)
        self._state = self._state.with_subnet(netuid, replace(subnet, neurons=neurons))
        return None

    # -- sim-only helpers (no signature: the sim's sudo) -------------------------------------------

    def create_subnet(self, netuid: int, **hyperparameters) -> None:
        """Register a new subnet (in the next block) with DEFAULT_HYPERPARAMETERS overridden."""
        if not 0 < netuid <= U16_MAX:
            raise ValueError(f"create_subnet: netuid must be 1..65535, got {netuid}")
        if netuid in self._state.subnets:
            raise SimRejected("SubtensorModule.SubnetExists", f"subnet {netuid} exists on {self.source}")
        with self.block() as b:
            self._state = self._state.with_subnet(netuid, self._new_subnet(netuid, b, hyperparameters))

    def set_hyperparameter(self, netuid: int | None, name: str, value) -> None:
        """Set a subnet hyperparameter (or, with netuid None, a global: tao_weight, stake_threshold)."""
        with self.block():
            if netuid is None:
                if name not in DEFAULT_GLOBALS:
                    raise ValueError(f"unknown global {name!r}; known: {', '.join(DEFAULT_GLOBALS)}")
                self._state = replace(self._state, globals={**self._state.globals, name: int(value)})
                return
            if name not in DEFAULT_HYPERPARAMETERS:
                raise ValueError(f"unknown hyperparameter {name!r}; known: {', '.join(DEFAULT_HYPERPARAMETERS)}")
            if name == "liquid_alpha_consensus_mode":  # a ConsensusMode variant name, as the chain stores it
                value = contract.CONSENSUS_MODES[consensus_mode_code(value)].capitalize()
            if name == "mechanism_count" and value != 1:
                raise ValueError(f"mechanism_count {value}: the simulation runs one mechanism per subnet")
            subnet = self._subnet(netuid)
            b = self._open.number
            if name in ("alpha_emission_per_block", "owner_cut"):  # settle what accrued at the old rate
                _, cut = subnet.per_block_injection()
                owed_cut = (b - int(subnet.params["owner_cut_from"])) * cut
                subnet = subnet.with_params(pending_carry=subnet.pending_emission(b), pending_from=b,
                                            owner_cut_carry=int(subnet.params["owner_cut_carry"]) + owed_cut,
                                            owner_cut_from=b)
            self._state = self._state.with_subnet(netuid, subnet.with_params(**{name: value}))

    def register(self, netuid: int, hotkey_ss58: str, coldkey_ss58: str) -> int:
        """Register `hotkey_ss58` (owned by `coldkey_ss58`) on the subnet in the next block; its uid.

        A new uid while the subnet has fewer than max_allowed_uids; otherwise the uid with the lowest
        pruning score is replaced (`replace_neuron`, spec §6): pruning score = emission; uids still in
        their immunity period (block − registration < immunity_period) and the owner's hotkey are
        spared while another candidate exists; ties go to the lowest uid.
        """
        if not (isinstance(hotkey_ss58, str) and isinstance(coldkey_ss58, str)):
            raise ValueError("register: hotkey_ss58 and coldkey_ss58 must be ss58 strings")
        with self.block() as b:
            subnet = self._subnet(netuid)
            if subnet.uid_of(hotkey_ss58) is not None:
                raise SimRejected("SubtensorModule.HotKeyAlreadyRegisteredInSubNet",
                                  f"{hotkey_ss58} is already registered on subnet {netuid}")
            uid = self._uid_for_registration(subnet, b)
            self._state = self._state.with_subnet(netuid, self._place_neuron(subnet, uid, hotkey_ss58, coldkey_ss58, b))
        return uid

    @staticmethod
    def _uid_for_registration(subnet: SubnetState, b: int) -> int:
        n = subnet.neurons.height
        if n < int(subnet.params["max_allowed_uids"]):
            return n
        candidates = subnet.neurons.filter(pl.col("hotkey") != subnet.params["owner_hotkey"])
        if candidates.height == 0:
            raise SimRejected("SubtensorModule.NoNeuronIdAvailable", "every uid belongs to the subnet owner")
        immune = (pl.lit(b, pl.Int64) - pl.col("block_at_registration").cast(pl.Int64)
                  < int(subnet.params["immunity_period"]))
        ranked = candidates.with_columns(immune.alias("immune")).sort("immune", "emission", "uid")
        return int(ranked["uid"][0])

    @staticmethod
    def _place_neuron(subnet: SubnetState, uid: int, hotkey: str, coldkey: str, b: int) -> SubnetState:
        """Append a uid, or `replace_neuron` (spec §6): the replaced uid's own weight and bond rows are
        cleared, incoming weights to it set to 0 (entries kept), LastUpdate = the registration block,
        permit cleared, its outputs zeroed, no axon."""
        fresh = pl.DataFrame([{"uid": uid, "hotkey": hotkey, "coldkey": coldkey, "emission": 0, "consensus": 0,
                               "incentive": 0, "dividends": 0, "validator_trust": 0, "active": True,
                               "validator_permit": False, "last_update": b, "block_at_registration": b,
                               "axon_ip": None, "axon_port": None, "axon_protocol": None}], schema=_NEURON_SCHEMA)
        if uid == subnet.neurons.height:
            return replace(subnet, neurons=pl.concat([subnet.neurons, fresh]))
        weights = (subnet.weights.filter(pl.col("validator_uid") != uid)
                   .with_columns(pl.when(pl.col("miner_uid") == uid).then(pl.lit(0, pl.UInt16))
                                 .otherwise(pl.col("weight")).alias("weight")))
        return replace(subnet, neurons=pl.concat([subnet.neurons.filter(pl.col("uid") != uid), fresh]).sort("uid"),
                       weights=weights, bonds=subnet.bonds.filter(pl.col("validator_uid") != uid))

    def add_stake(self, netuid: int, hotkey_ss58: str, alpha_rao: int, tao_rao: int = 0) -> None:
        """Credit `alpha_rao` of alpha on the subnet (and `tao_rao` of root TAO stake) to a hotkey."""
        if alpha_rao < 0 or tao_rao < 0:
            raise ValueError(f"add_stake: amounts must be >= 0 rao, got alpha {alpha_rao}, tao {tao_rao}")
        with self.block():
            subnet = self._subnet(netuid)
            credit = pl.DataFrame({"hotkey": [hotkey_ss58], "amount": [int(alpha_rao)]},
                                  schema={"hotkey": pl.String, "amount": pl.UInt64})
            world = self._state.with_subnet(
                netuid, replace(subnet, alpha_stakes=_add_stake(subnet.alpha_stakes, credit, "alpha_stake")))
            if tao_rao:
                world = replace(world, tao_stakes=_add_stake(world.tao_stakes, credit.with_columns(
                    pl.lit(int(tao_rao), pl.UInt64).alias("amount")), "tao_stake"))
            self._state = world

    # -- save / load ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the whole chain (every state version, so history stays readable) as one JSON file,
        atomically. Frames shared between versions are written once."""
        if self._open is not None:
            raise RuntimeError("save inside `with sim.block()`: seal the block first")
        frames: list[dict] = []
        index: dict[int, int] = {}

        def ref(kind: str, frame: pl.DataFrame) -> int:
            if id(frame) not in index:
                index[id(frame)] = len(frames)
                frames.append({"kind": kind, "columns": frame.to_dict(as_series=False)})
            return index[id(frame)]

        versions = [{"block": block, "globals": world.globals, "tao_stakes": ref("tao_stakes", world.tao_stakes),
                     "subnets": {str(netuid): {"params": s.params, "neurons": ref("neurons", s.neurons),
                                               "weights": ref("weights", s.weights), "bonds": ref("bonds", s.bonds),
                                               "alpha_stakes": ref("alpha_stakes", s.alpha_stakes)}
                                 for netuid, s in world.subnets.items()}}
                    for block, world in zip(self._blocks, self._versions, strict=True)]
        document = {"format": STATE_FORMAT, "note": "simulated chain state (not a real chain)", "seed": self.seed,
                    "head": self._head, "scenario": self.scenario, "frames": frames, "versions": versions}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temp name of this writer's own: several processes and threads (the chunks of a backfill)
        # may save one state file; a shared temp name let one rename the other's half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(document, separators=(",", ":")))
        os.replace(tmp, path)
        self._saved = (self._head, self._state, _scenario_text(self))

    @classmethod
    def load(cls, path: str | os.PathLike, *, source: str | None = None) -> SimChain:
        """A chain saved by `save`; it continues exactly as the saved one would have."""
        document = json.loads(Path(path).read_text())
        if document.get("format") != STATE_FORMAT:
            raise ValueError(f"{path}: not a simulated chain state (format {document.get('format')!r}, "
                             f"expected {STATE_FORMAT!r})")
        frames = [pl.DataFrame(f["columns"], schema=_FRAME_SCHEMAS[f["kind"]]) for f in document["frames"]]
        sim = cls.__new__(cls)
        sim.seed = int(document["seed"])
        sim.source = source or f"sim:{sim.seed}@{path}"
        sim.state_file = None
        sim.scenario = document["scenario"]
        sim._keypairs = {}
        sim._lock = threading.RLock()
        sim._head = int(document["head"])
        sim._open = None
        sim._blocks, sim._versions = [], []
        for v in document["versions"]:
            subnets = {int(netuid): SubnetState(params=s["params"], neurons=frames[s["neurons"]],
                                                weights=frames[s["weights"]], bonds=frames[s["bonds"]],
                                                alpha_stakes=frames[s["alpha_stakes"]])
                       for netuid, s in v["subnets"].items()}
            sim._blocks.append(int(v["block"]))
            sim._versions.append(WorldState(subnets=subnets, globals=v["globals"], tao_stakes=frames[v["tao_stakes"]]))
        sim._state = sim._versions[-1]
        sim._saved = (sim._head, sim._state, _scenario_text(sim))
        return sim
