"""`SubstrateChain`: the ChainClient over substrate-interface 1.8.1, for `ws://`, `wss://` and `replay:`.

Every read of a snapshot is pinned to one block hash (chain_interface.md §2.2). Runtime-API answers
are fetched with raw `state_call` at that hash and decoded with the layout of the runtime that executed
them (registry.py); storage is read through substrate-interface's V14 metadata for that block (the
Weights/Bonds value type and hashers are checked against what the fast decoder assumes). Decoding
problems raise ChainDecodeError; nothing undecodable turns into None.

Neurons come from get_selective_mechagraph(netuid, mechanism 0, every index) where the runtime has
it (spec >= 320; one round trip, per-mechanism incentive/last_update), plus get_neurons_lite for
validator_trust; spec 218 has neither metagraph API, so neurons lite + storage is used there.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from dataclasses import dataclass
from typing import ClassVar

import polars as pl
from scalecodec import types as scalecodec_types
from scalecodec.base import ScaleBytes
from substrateinterface import SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from websocket import WebSocketException

from schemas import chain as tables
from tasks.chain import scale
from tasks.chain.errors import (
    ChainConnectionError,
    ChainDecodeError,
    ChainError,
    ChainRpcError,
    CommitRevealUnavailable,
)
from tasks.chain.interface import PARTS, Snapshot, Submission, check_parts
from tasks.chain.registry import ALL_METAGRAPH_INDEXES, TYPE_REGISTRY, Layout, RuntimeCall, layout_for
from tasks.chain.transport import ReconnectingTransport, RecordingTransport, ReplayTransport

SS58_FORMAT = 42
# NetUidStorageIndex = mechid * GLOBAL_MAX_SUBNET_COUNT + netuid (chain_interface.md §2.3).
GLOBAL_MAX_SUBNET_COUNT = 4096
# Header digest item `RuntimeEnvironmentUpdated` (sp_runtime DigestItem index 8): this block set new code.
_RUNTIME_UPDATED_DIGEST = "0x08"
_U16_PAIRS = "Vec<(u16, u16)>"
ROOT_NETUID = 0
U64_MAX = 2**64 - 1  # TaoWeight is a u64 fraction of u64::MAX
# Writes (chain_interface.md §6.5): the SDK's mortal era, and the axon defaults it serves with.
ERA_PERIOD_BLOCKS = 128
AXON_VERSION = 1
AXON_PROTOCOL = 4
BLOCK_TIME_S = 12.0  # mainnet block time, for drand reveal rounds (chain_interface.md §6.4)
# bittensor-drand that builds CR v3 commits for runtimes with the stateful epoch index (§6.4)
DRAND_REQUIREMENT = "bittensor-drand==2.0.0"
# The signed extensions substrate-interface 1.8.1 builds the signing payload from (chain_interface.md §6.6).
SIGNABLE_EXTENSIONS = frozenset({"CheckMortality", "CheckNonce", "ChargeTransactionPayment", "ChargeAssetTxPayment",
                                 "CheckMetadataHash", "CheckSpecVersion", "CheckTxVersion", "CheckGenesis"})
_CR_SCHEDULE_STORAGE = ("LastEpochBlock", "PendingEpochAt", "SubnetEpochIndex", "Tempo", "BlocksSinceLastStep",
                        "RevealPeriodEpochs")

# metagraph field -> neurons column (None: checked for length, mapped separately)
_METAGRAPH_PER_UID = {
    "hotkeys": "hotkey", "coldkeys": "coldkey", "alpha_stake": "alpha_stake", "tao_stake": "tao_stake",
    "total_stake": "total_stake", "emission": "emission", "consensus": "consensus", "incentives": "incentive",
    "dividends": "dividends", "active": "active", "validator_permit": "validator_permit",
    "last_update": "last_update", "block_at_registration": "block_at_registration", "axons": None}
# neurons lite field -> neurons column, where the runtime has no metagraph API
_LITE_PER_UID = {
    "hotkey": "hotkey", "coldkey": "coldkey", "emission": "emission", "consensus": "consensus",
    "incentive": "incentive", "dividends": "dividends", "active": "active", "validator_permit": "validator_permit",
    "last_update": "last_update"}
_SUBNET_STORAGE_WITHOUT_METAGRAPH = ("SubnetworkN", "SubnetOwnerHotkey", "LastMechansimStepBlock",
                                     "MaxAllowedUids", "PendingEmission")


class _Substrate(SubstrateInterface):
    """substrate-interface with decoded V14 metadata shared between clients, keyed by its bytes.

    Decoding a runtime's ~520 KB metadata costs about a second of CPU per client otherwise; the key is
    the metadata itself (sha256), so different chains or runtimes can never share an entry.
    """

    _decoded: ClassVar[dict[str, object]] = {}

    def get_block_metadata(self, block_hash=None, decode=True):
        response = super().get_block_metadata(block_hash=block_hash, decode=False)
        raw = response.get("result")
        if not decode or not raw:
            return response
        key = hashlib.sha256(raw.encode()).hexdigest()
        if key not in self._decoded:
            decoder = self.runtime_config.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
            decoder.decode()
            self._decoded[key] = decoder
        return self._decoded[key]


_RUNTIME_LOAD_LOCK = threading.RLock()


def _init_runtime(si: SubstrateInterface, block_hash: str | None) -> None:
    """si.init_runtime(block_hash), undone if it fails half-way.

    substrate-interface 1.8.1 stores the block hash and spec version before it has fetched their
    metadata; after a failure in between (a dropped connection), the next init_runtime for that block
    would return at once and leave the client with no (or another runtime's) metadata.
    """
    # One runtime load at a time in this process: two clients decoding metadata in parallel threads
    # (a backfill's concurrent chunks) intermittently failed inside scalecodec with
    # `Decoder class for "Compact<u32>" not found`. Loads are rare (per runtime, metadata is cached).
    with _RUNTIME_LOAD_LOCK:
        try:
            si.init_runtime(block_hash=block_hash)
        except BaseException:
            si.block_hash = si.block_id = si.runtime_version = None
            raise


@dataclass(frozen=True)
class Pinned:
    """A block every read of one snapshot uses."""

    block: int
    block_hash: str
    spec_version: int  # the runtime that executed state_call at block_hash
    layout: Layout


def _u16(value: int) -> str:
    return value.to_bytes(2, "little").hex()


def _compact_len(n: int) -> str:
    if n < 1 << 6:
        return bytes([n << 2]).hex()
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little").hex()
    return ((n << 2) | 2).to_bytes(4, "little").hex()


def _canonical_type(runtime_config, type_string: str) -> str:
    """A metadata type ('scale_info::200') spelled out in our registry's words ('Vec<(u16, u16)>')."""
    cls = runtime_config.get_decoder_class(type_string)
    if cls is None:
        return type_string
    if issubclass(cls, scalecodec_types.Vec):
        return f"Vec<{_canonical_type(runtime_config, cls.sub_type)}>"
    if issubclass(cls, scalecodec_types.Tuple):
        return "(" + ", ".join(_canonical_type(runtime_config, t) for t in cls.type_mapping) + ")"
    if cls.__module__ == scalecodec_types.__name__:
        return cls.__name__.lower()
    return type_string


def axon_ip(ip: int, ip_type: int) -> str | None:
    """The axon's address as text; None for a neuron that never served (ip 0)."""
    if ip == 0:
        return None
    if ip_type == 4:
        return str(ipaddress.IPv4Address(ip & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(ip))


class SubstrateChain:
    """ChainClient for a Subtensor node (`ws://…`, `wss://…`) or a recording (`replay:PATH`).

    record=PATH writes every JSON-RPC request/response of this client to PATH on close(), in the
    recording format `replay:` reads. The connection opens on first use. page_size is the
    state_getKeysPaged page for Weights/Bonds; 100 is substrate-interface's default, which the
    recorded mainnet traffic used (a replay must repeat the recorded requests exactly).
    """

    def __init__(self, source: str, *, record: str | None = None, page_size: int = 100,
                 ws_options: dict | None = None):
        if not (source.startswith(("ws://", "wss://")) or source.startswith("replay:")):
            raise ValueError(f"chain source {source!r}: expected ws://…, wss://… or replay:PATH")
        self.source, self.record, self.page_size = source, record, page_size
        self._ws_options = ws_options or {"timeout": 60}
        self._si: SubstrateInterface | None = None
        self._headers: dict[str, dict] = {}
        self._hash_by_block: dict[int, str] = {}

    # -- connection -------------------------------------------------------------------------------

    @property
    def substrate(self) -> SubstrateInterface:
        if self._si is None:
            options = dict(ss58_format=SS58_FORMAT, type_registry=TYPE_REGISTRY, use_remote_preset=False,
                           auto_discover=False)
            if self.source.startswith("replay:"):
                replay = ReplayTransport(self.source[len("replay:"):])
                si = _Substrate(websocket=replay, **options)  # any object; the transport is swapped
                si.transport = replay
            else:
                try:
                    si = _Substrate(url=self.source, ws_options=dict(self._ws_options), **options)
                except (WebSocketException, OSError) as err:
                    raise ChainConnectionError(self.source, "connect", err) from err
                si.transport = ReconnectingTransport(si.transport, self.source)
            if self.record:
                si.transport = RecordingTransport(si.transport, self.record)
            self._si = si
        return self._si

    def close(self) -> None:
        if self._si is not None:
            self._si.close()
            self._si = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def rpc(self, method: str, params: list):
        """One JSON-RPC request; the `result`, or ChainRpcError naming method, params and the error."""
        try:
            response = self.substrate.rpc_request(method, params)
        except ChainError:
            raise
        except SubstrateRequestException as e:
            raise ChainRpcError(method, params, e.args[0] if e.args else str(e)) from e
        if "error" in response:
            raise ChainRpcError(method, params, response["error"])
        return response.get("result")

    # -- blocks -----------------------------------------------------------------------------------

    def _header(self, block_hash: str) -> dict:
        header = self._headers.get(block_hash)
        if header is None:
            header = self.rpc("chain_getHeader", [block_hash])
            if header is None:
                raise ChainError(f"block {block_hash} not found (chain_getHeader returned null)")
            self._headers[block_hash] = header
            self._hash_by_block[int(header["number"], 16)] = block_hash
        return header

    def head_block(self, finalized: bool = True) -> int:
        head = self.rpc("chain_getFinalizedHead", []) if finalized else self.rpc("chain_getBlockHash", [])
        return int(self._header(head)["number"], 16)

    def block_hash(self, block: int) -> str:
        if block not in self._hash_by_block:
            block_hash = self.rpc("chain_getBlockHash", [block])
            if block_hash is None:
                raise ChainError(f"block {block} not found on {self.source} (beyond the head, or pruned)")
            self._hash_by_block[block] = block_hash
        return self._hash_by_block[block]

    def pin(self, block: int) -> Pinned:
        """Resolve `block` to its hash and runtime; load that runtime's metadata into substrate-interface."""
        block_hash = self.block_hash(block)
        header = self._header(block_hash)
        if int(header["number"], 16) != block:
            raise ChainError(f"chain_getHeader({block_hash}) says block {int(header['number'], 16)}, "
                             f"expected {block}")
        si = self.substrate
        try:
            # Storage at a block is decoded with its parent's runtime (substrate-interface's rule).
            _init_runtime(si, block_hash)
        except ChainError:
            raise
        except SubstrateRequestException as e:
            raise ChainRpcError("init_runtime", [block_hash], e.args[0] if e.args else str(e)) from e
        spec_version = si.runtime_version
        # state_call at the hash runs the block's own code: the same as the parent's unless this
        # block upgraded the runtime, which its header announces (chain_interface.md §2.3).
        if any(log.startswith(_RUNTIME_UPDATED_DIGEST) for log in header.get("digest", {}).get("logs", [])):
            spec_version = self.rpc("state_getRuntimeVersion", [block_hash])["specVersion"]
        return Pinned(block, block_hash, spec_version, layout_for(spec_version, block))

    # -- decoding helpers -------------------------------------------------------------------------

    def state_call(self, pinned: Pinned, call: RuntimeCall, params_hex: str):
        result = self.rpc("state_call", [call.name, "0x" + params_hex, pinned.block_hash])
        return self._decode(call.name, pinned, call.returns, result, wrapped=call.wrapped)

    @staticmethod
    def _decode(method: str, pinned: Pinned, type_string: str, hex_data, *, wrapped: bool = False):
        if not isinstance(hex_data, str) or not hex_data.startswith("0x"):
            raise ChainDecodeError(method, pinned.block, f"expected a 0x-prefixed hex string, got {hex_data!r:.80}")
        try:
            data = bytes.fromhex(hex_data[2:])
        except ValueError as e:
            raise ChainDecodeError(method, pinned.block, f"not hex: {e}") from None
        try:
            return scale.decode(type_string, data, wrapped=wrapped)
        except scale.Truncated as e:
            raise ChainDecodeError(method, pinned.block, f"{type_string} (spec {pinned.spec_version}, layout "
                                                         f"{pinned.layout.name}): {e}") from None

    def _storage_item(self, pallet: str, name: str):
        metadata_pallet = self.substrate.metadata.get_metadata_pallet(pallet)
        return metadata_pallet.get_storage_function(name) if metadata_pallet else None

    def storage_arity(self, pallet: str, name: str) -> int | None:
        """How many keys the storage item takes in this runtime; None when the runtime lacks it."""
        item = self._storage_item(pallet, name)
        return None if item is None else len(item.get_params_type_string())

    def storage_values(self, pinned: Pinned, items: list[tuple[str, str, list]]) -> list:
        """Single storage values, in `items` order, read in one state_queryStorageAt.

        An item this runtime lacks gives None; a missing entry gives the item's declared default
        (substrate-interface decodes it from the metadata), as the chain itself would read it.
        """
        si = self.substrate
        keys, where = [], []
        for i, (pallet, name, params) in enumerate(items):
            if self._storage_item(pallet, name) is not None:
                keys.append(si.create_storage_key(pallet, name, params))
                where.append(i)
        values: list = [None] * len(items)
        if not keys:
            return values
        names = sorted({items[i][1] for i in where})
        try:
            decoded = si.query_multi(keys, block_hash=pinned.block_hash)
        except ChainError:
            raise
        except SubstrateRequestException as e:
            raise ChainRpcError("state_queryStorageAt", [names, pinned.block_hash], e.args[0]) from e
        except Exception as e:  # scalecodec raises plain exceptions on bad bytes
            raise ChainDecodeError("state_queryStorageAt", pinned.block,
                                   f"storage {', '.join(names)}: {type(e).__name__}: {e}") from None
        by_key = {k.to_hex(): v for k, v in decoded}
        for key, i in zip(keys, where, strict=True):
            obj = by_key.get(key.to_hex())
            if obj is None:
                raise ChainDecodeError("state_queryStorageAt", pinned.block,
                                       f"the node returned no entry for {items[i][1]}{items[i][2]}")
            values[i] = obj.value
        return values

    def storage_rows(self, pinned: Pinned, pallet: str, name: str, netuid_index: int) -> list[tuple[int, list]]:
        """Every (uid, Vec<(u16, u16)>) of a double map keyed (NetUidStorageIndex, uid), e.g. Weights.

        Same paging requests as substrate-interface's query_map (state_getKeysPaged, then
        state_queryStorageAt per page, until an empty page), but values decode with the fast decoder.
        """
        item = self._storage_item(pallet, name)
        if item is None:
            raise ChainDecodeError(f"{pallet}.{name}", pinned.block, "storage item not in this runtime's metadata")
        value_type = _canonical_type(self.substrate.runtime_config, item.get_value_type_string())
        hashers = item.get_param_hashers()
        if value_type != _U16_PAIRS or hashers != ["Identity", "Identity"]:
            raise ChainDecodeError(f"{pallet}.{name}", pinned.block,
                                   f"metadata says value {value_type} with hashers {hashers}; expected "
                                   f"{_U16_PAIRS} keyed Identity, Identity")
        prefix = self.substrate.create_storage_key(pallet, name, [netuid_index]).to_hex()
        rows, start_key = [], prefix
        while True:
            keys = self.rpc("state_getKeysPaged", [prefix, self.page_size, start_key, pinned.block_hash])
            if not keys:
                break
            changes = self.rpc("state_queryStorageAt", [keys, pinned.block_hash])
            for group in changes:
                for key, value in group["changes"]:
                    if len(key) != len(prefix) + 4:
                        raise ChainDecodeError(f"{pallet}.{name}", pinned.block, f"unexpected key length: {key}")
                    uid = int.from_bytes(bytes.fromhex(key[-4:]), "little")
                    if value is None:
                        continue  # removed between the key listing and the read: no row
                    rows.append((uid, self._decode(f"{pallet}.{name}[{netuid_index}][{uid}]", pinned, _U16_PAIRS,
                                                   value)))
            start_key = keys[-1]
        rows.sort(key=lambda row: row[0])
        return rows

    # -- the snapshot -----------------------------------------------------------------------------

    def snapshot(self, netuid: int, block: int, parts: tuple[str, ...] = PARTS) -> Snapshot:
        parts = check_parts(parts)
        pinned = self.pin(block)
        out: dict[str, pl.DataFrame] = {}
        metagraph = lite = None
        if ("neurons" in parts or "subnets" in parts) and pinned.layout.selective_mechagraph is not None:
            metagraph = self.metagraph(pinned, netuid)
        if "neurons" in parts or ("subnets" in parts and metagraph is None):
            lite = self.neurons_lite(pinned, netuid, metagraph)
        if "blocks" in parts:
            out["blocks"] = self._blocks_frame(pinned)
        if "neurons" in parts:
            out["neurons"] = self._neurons_frame(pinned, netuid, metagraph, lite)
        if "subnets" in parts:
            out["subnets"] = self._subnets_frame(pinned, netuid, metagraph, lite)
        if "weights" in parts or "bonds" in parts:
            mechanisms = self.mechanism_count(pinned, netuid)
            for part, storage, column in (("weights", "Weights", "weight"), ("bonds", "Bonds", "bond")):
                if part in parts:
                    out[part] = self._edges_frame(pinned, netuid, mechanisms, storage, column)
        return Snapshot(netuid=netuid, block=block, block_hash=pinned.block_hash,
                        spec_version=pinned.spec_version, **out).validate()

    def metagraph(self, pinned: Pinned, netuid: int, mechid: int = 0) -> dict:
        """get_selective_mechagraph(netuid, mechid, every index) decoded; ChainError if no such subnet."""
        call = pinned.layout.selective_mechagraph
        params = (_u16(netuid) + bytes([mechid]).hex() + _compact_len(len(ALL_METAGRAPH_INDEXES))
                  + "".join(_u16(i) for i in ALL_METAGRAPH_INDEXES))
        metagraph = self.state_call(pinned, call, params)
        if metagraph is None:
            raise ChainError(f"subnet {netuid} (mechanism {mechid}) does not exist at block {pinned.block}")
        missing = [name for name, value in metagraph.items() if value is None]
        if missing:
            raise ChainDecodeError(call.name, pinned.block, f"fields asked for but not returned: {', '.join(missing)}")
        n = metagraph["num_uids"]
        for field in _METAGRAPH_PER_UID:
            if len(metagraph[field]) != n:
                raise ChainDecodeError(call.name, pinned.block,
                                       f"{field} has {len(metagraph[field])} entries for {n} uids")
        return metagraph

    def neurons_lite(self, pinned: Pinned, netuid: int, metagraph: dict | None = None) -> list[dict]:
        """get_neurons_lite, sorted by uid; checked against the metagraph's hotkeys when given."""
        call = pinned.layout.neurons_lite
        lite = self.state_call(pinned, call, _u16(netuid))
        if lite is None:  # pre-233 runtimes answer an empty Vec<u8> for a missing subnet
            raise ChainError(f"subnet {netuid} does not exist at block {pinned.block}")
        lite = sorted(lite, key=lambda neuron: neuron["uid"])
        if [neuron["uid"] for neuron in lite] != list(range(len(lite))):
            raise ChainDecodeError(call.name, pinned.block, "uids are not 0..n-1")
        if metagraph is not None:
            if len(lite) != metagraph["num_uids"]:
                raise ChainDecodeError(call.name, pinned.block,
                                       f"{len(lite)} neurons, the metagraph has {metagraph['num_uids']} uids")
            for neuron, hotkey in zip(lite, metagraph["hotkeys"], strict=True):
                if neuron["hotkey"] != hotkey:
                    raise ChainDecodeError(call.name, pinned.block,
                                           f"uid {neuron['uid']}: neurons lite has hotkey {neuron['hotkey']}, "
                                           f"the metagraph has {hotkey}")
        return lite

    def mechanism_count(self, pinned: Pinned, netuid: int) -> int:
        if not pinned.layout.mechanisms:
            return 1
        (count,) = self.storage_values(pinned, [("SubtensorModule", "MechanismCountCurrent", [netuid])])
        return int(count or 1)

    def _tao_weight_key(self, netuid: int) -> tuple[str, str, list]:
        # TaoWeight is one global value, but was a per-netuid map in spec 218 (local_chain.md §6).
        params = [netuid] if self.storage_arity("SubtensorModule", "TaoWeight") == 1 else []
        return ("SubtensorModule", "TaoWeight", params)

    def _blocks_frame(self, pinned: Pinned) -> pl.DataFrame:
        (now,) = self.storage_values(pinned, [("Timestamp", "Now", [])])
        if now is None:
            raise ChainDecodeError("Timestamp.Now", pinned.block, "storage item missing from the runtime")
        return pl.DataFrame({"block": [pinned.block], "block_hash": [pinned.block_hash],
                             "spec_version": [pinned.spec_version], "timestamp_ms": [now],
                             "source": [self.source]}, schema=tables.BLOCKS.polars_schema())

    def _neurons_frame(self, pinned: Pinned, netuid: int, metagraph: dict | None, lite: list[dict]):
        n = len(lite)
        data = {"netuid": [netuid] * n, "block": [pinned.block] * n, "uid": list(range(n))}
        if metagraph is not None:
            data.update({column: metagraph[field] for field, column in _METAGRAPH_PER_UID.items() if column})
            axons = metagraph["axons"]
        else:
            data.update({column: [neuron[field] for neuron in lite] for field, column in _LITE_PER_UID.items()})
            data.update(self._stakes_from_storage(pinned, netuid, data["hotkey"]))
            axons = [neuron["axon_info"] for neuron in lite]
        # validator_trust is not in the metagraph (chain_interface.md §3)
        data["validator_trust"] = [neuron["validator_trust"] for neuron in lite]
        data["axon_ip"] = [axon_ip(a["ip"], a["ip_type"]) for a in axons]
        data["axon_port"] = [a["port"] if a["ip"] else None for a in axons]
        data["axon_protocol"] = [a["protocol"] if a["ip"] else None for a in axons]
        return pl.DataFrame(data, schema=tables.NEURONS.polars_schema())

    def _stakes_from_storage(self, pinned: Pinned, netuid: int, hotkeys: list[str]) -> dict[str, list]:
        """Stakes and registration blocks where the runtime has no metagraph API (spec 218).

        Raw per-hotkey totals: alpha = TotalHotkeyAlpha(hotkey, netuid), tao = the hotkey's root
        stake TotalHotkeyAlpha(hotkey, 0), total = alpha + tao × TaoWeight / (2^64 − 1). Child-key
        delegation, which the metagraph API folds in, is not applied here.
        """
        if not pinned.layout.dtao:
            raise ChainError(f"neurons at spec {pinned.spec_version} (layout {pinned.layout.name}): pre-dTAO "
                             f"stake (TAO per hotkey) has no reader; snapshots need spec >= 218")
        n = len(hotkeys)
        items = ([("SubtensorModule", "BlockAtRegistration", [netuid, uid]) for uid in range(n)]
                 + [("SubtensorModule", "TotalHotkeyAlpha", [hotkey, netuid]) for hotkey in hotkeys]
                 + [("SubtensorModule", "TotalHotkeyAlpha", [hotkey, ROOT_NETUID]) for hotkey in hotkeys]
                 + [self._tao_weight_key(netuid)])
        values = self.storage_values(pinned, items)
        registered, alpha, tao, tao_weight = values[:n], values[n:2 * n], values[2 * n:3 * n], values[-1]
        if None in registered or None in alpha or None in tao or tao_weight is None:
            raise ChainDecodeError("state_queryStorageAt", pinned.block,
                                   "BlockAtRegistration/TotalHotkeyAlpha/TaoWeight missing from the runtime")
        total = [a + t * tao_weight // U64_MAX for a, t in zip(alpha, tao, strict=True)]
        return {"block_at_registration": registered, "alpha_stake": alpha, "tao_stake": tao, "total_stake": total}

    def hyperparams(self, pinned: Pinned, netuid: int) -> dict:
        """The subnet's hyperparameters by name (fixed struct, or v3's name -> value list)."""
        layout = pinned.layout
        value = self.state_call(pinned, layout.hyperparams, _u16(netuid))
        if value is None:
            raise ChainError(f"subnet {netuid} does not exist at block {pinned.block}")
        if not layout.hyperparams_named:
            return value
        named = {}
        for entry in value:
            ((_kind, v),) = entry["value"].items()
            named[entry["name"]] = v
        return named

    def _subnets_frame(self, pinned: Pinned, netuid: int, metagraph: dict | None, lite: list[dict] | None):
        hp = self.hyperparams(pinned, netuid)
        module = "SubtensorModule"
        storage_items = [self._tao_weight_key(netuid), (module, "StakeThreshold", []),
                         (module, "BondsPenalty", [netuid]), (module, "MechanismCountCurrent", [netuid]),
                         (module, "ActivityCutoffFactorMilli", [netuid])]
        if metagraph is None:  # spec 218: what the metagraph would carry, from storage
            storage_items += [(module, name, [netuid]) for name in _SUBNET_STORAGE_WITHOUT_METAGRAPH]
        values = self.storage_values(pinned, storage_items)
        tao_weight, stake_threshold, bonds_penalty, mechanism_count, cutoff_factor_milli = values[:5]
        if metagraph is None:
            stored = dict(zip(_SUBNET_STORAGE_WITHOUT_METAGRAPH, values[5:], strict=True))
            if None in stored.values():
                raise ChainDecodeError("state_queryStorageAt", pinned.block,
                                       f"subnet storage missing from the runtime: {stored}")
            hotkeys = [neuron["hotkey"] for neuron in lite]
            source = {**hp, "num_uids": stored["SubnetworkN"], "owner_hotkey": stored["SubnetOwnerHotkey"],
                      "last_step": stored["LastMechansimStepBlock"], "max_uids": stored["MaxAllowedUids"],
                      "pending_alpha_emission": stored["PendingEmission"]}
        else:
            hotkeys = metagraph["hotkeys"]
            source = metagraph
        steepness_bits = hp.get("alpha_sigmoid_steepness")
        if isinstance(steepness_bits, dict):
            steepness_bits = steepness_bits["bits"]
        steepness = None
        if steepness_bits is not None:
            if steepness_bits % (1 << 32):
                raise ChainDecodeError(pinned.layout.hyperparams.name, pinned.block,
                                       f"alpha_sigmoid_steepness I32F32 bits {steepness_bits} is not an integer")
            steepness = steepness_bits >> 32
        yuma_version = hp.get("yuma_version")
        owner = source["owner_hotkey"]
        row = {
            "netuid": netuid, "block": pinned.block, "subnetwork_n": source["num_uids"], "tempo": source["tempo"],
            "owner_hotkey": owner, "owner_uid": hotkeys.index(owner) if owner in hotkeys else None,
            "kappa": source["kappa"], "bonds_penalty": bonds_penalty, "bonds_moving_avg": source["bonds_moving_avg"],
            "yuma3_enabled": None if yuma_version is None else yuma_version == 3,
            "liquid_alpha_enabled": source["liquid_alpha_enabled"], "alpha_low": source["alpha_low"],
            "alpha_high": source["alpha_high"], "alpha_sigmoid_steepness": steepness,
            "activity_cutoff": source["activity_cutoff"], "activity_cutoff_factor_milli": cutoff_factor_milli,
            "max_allowed_validators": source["max_validators"], "max_allowed_uids": source["max_uids"],
            "min_allowed_weights": source["min_allowed_weights"], "max_weight_limit": source["max_weights_limit"],
            "weights_version": source["weights_version"], "weights_rate_limit": source["weights_rate_limit"],
            "immunity_period": source["immunity_period"],
            "commit_reveal_enabled": source["commit_reveal_weights_enabled"],
            "last_mechanism_step_block": source["last_step"], "mechanism_count": mechanism_count,
            "tao_weight": tao_weight, "stake_threshold": stake_threshold,
            "pending_emission": source["pending_alpha_emission"],
        }
        return pl.DataFrame([row], schema=tables.SUBNETS.polars_schema())

    def _edges_frame(self, pinned: Pinned, netuid: int, mechanisms: int, storage: str, column: str) -> pl.DataFrame:
        mechids, validators, miners, values = [], [], [], []
        for mechid in range(mechanisms):
            for uid, pairs in self.storage_rows(pinned, "SubtensorModule", storage,
                                                mechid * GLOBAL_MAX_SUBNET_COUNT + netuid):
                mechids.extend([mechid] * len(pairs))
                validators.extend([uid] * len(pairs))
                miners.extend(p[0] for p in pairs)
                values.extend(p[1] for p in pairs)
        n = len(values)
        table = tables.WEIGHTS if column == "weight" else tables.BONDS
        return pl.DataFrame({"netuid": [netuid] * n, "mechid": mechids, "block": [pinned.block] * n,
                             "validator_uid": validators, "miner_uid": miners, column: values},
                            schema=table.polars_schema())

    # -- writes (ChainWriter) ---------------------------------------------------------------------

    def _head_runtime(self) -> SubstrateInterface:
        """substrate-interface loaded with the runtime at the best head (writes are built against it)."""
        si = self.substrate
        try:
            _init_runtime(si, None)
        except SubstrateRequestException as e:
            raise ChainRpcError("init_runtime", [], e.args[0] if e.args else str(e)) from e
        return si

    def _has_call(self, si: SubstrateInterface, pallet: str, name: str) -> bool:
        metadata_pallet = si.metadata.get_metadata_pallet(pallet)
        return metadata_pallet is not None and any(call.name == name for call in metadata_pallet.calls or [])

    def _error_name(self, si: SubstrateInterface, error) -> str:
        """"SubtensorModule.SettingWeightsTooFast" for a module DispatchError, else its raw form."""
        if not isinstance(error, dict) or "Module" not in error:
            return str(error)
        module = error["Module"]
        pallet_index, error_index = module["index"], module["error"]
        if isinstance(error_index, str):  # 4-byte error since the new format: the index is the first byte
            error_index = int(error_index[2:4], 16)
        elif isinstance(error_index, (list, tuple, bytes)):
            error_index = error_index[0]
        pallet = next((p.name for p in si.metadata.pallets if p["index"] == pallet_index), f"pallet{pallet_index}")
        try:
            return f"{pallet}.{si.metadata.get_module_error(pallet_index, error_index).name}"
        except Exception:
            return f"{pallet}.error{error_index}"

    def extensions_carrying_data(self, si: SubstrateInterface | None = None) -> list[str]:
        """Signed extensions of the loaded runtime that substrate-interface does not know and that carry
        bytes (in the extrinsic or the signed payload). Any such extension makes our signature wrong
        (`BadProof`), so `submit` refuses to sign while this list is not empty (chain_interface.md §6.6)."""
        si = si or self.substrate
        carrying = []
        for name, types in si.metadata.get_signed_extensions().items():
            if name in SIGNABLE_EXTENSIONS:
                continue
            for type_string in (types.get("extrinsic"), types.get("additional_signed")):
                if type_string is None:
                    continue
                try:
                    si.runtime_config.create_scale_object(type_string, data=ScaleBytes("0x")).decode()
                except Exception:  # needs bytes: not zero-sized
                    carrying.append(name)
                    break
        return carrying

    def submit(self, call, keypair) -> Submission:
        """Sign `call` with `keypair` (mortal era of 128 blocks, nonce from system_accountNextIndex),
        submit it and wait until a block includes it. The chain's answers come back in the Submission:
        a transaction the pool rejects has block None; a dispatch failure names the module error. A
        runtime we cannot sign for raises ChainError before anything is signed."""
        keypair = getattr(keypair, "keypair", keypair)  # a wallet Hotkey or a substrate-interface Keypair
        si = self.substrate
        carrying = self.extensions_carrying_data(si)
        if carrying:
            raise ChainError(f"runtime spec {si.runtime_version} has signed extensions that carry data and that "
                             f"substrate-interface 1.8.1 cannot sign: {', '.join(carrying)}; not sending")
        nonce = self.rpc("system_accountNextIndex", [keypair.ss58_address])
        extrinsic = si.create_signed_extrinsic(call=call, keypair=keypair, era={"period": ERA_PERIOD_BLOCKS},
                                               nonce=nonce)
        extrinsic_hash = "0x" + extrinsic.extrinsic_hash.hex()
        try:
            receipt = si.submit_extrinsic(extrinsic, wait_for_inclusion=True)
        except (SubstrateRequestException, ValueError) as e:
            detail = e.args[0] if e.args else str(e)
            if isinstance(detail, dict):
                detail = f"{detail.get('message', '')} {detail.get('data', '')}".strip()
            return Submission(ok=False, block=None, extrinsic_hash=extrinsic_hash, error=f"rejected: {detail}")
        block = int(self._header(receipt.block_hash)["number"], 16)
        events = tuple(f"{e.value['module_id']}.{e.value['event_id']}" for e in receipt.triggered_events)
        error = None
        for event in receipt.triggered_events:
            if event.value["module_id"] == "System" and event.value["event_id"] == "ExtrinsicFailed":
                attributes = event.value["attributes"]
                dispatch_error = attributes.get("dispatch_error", attributes) if isinstance(attributes, dict) \
                    else attributes
                error = self._error_name(si, dispatch_error)
        ok = error is None and "System.ExtrinsicSuccess" in events
        if not ok and error is None:
            error = "no System.ExtrinsicSuccess event"
        return Submission(ok=ok, block=block, extrinsic_hash=extrinsic_hash, events=events, error=error)

    def commit_reveal_enabled(self, netuid: int) -> bool:
        """CommitRevealWeightsEnabled of the subnet at the best head."""
        si = self._head_runtime()
        return bool(si.query("SubtensorModule", "CommitRevealWeightsEnabled", [netuid]).value)

    def set_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey,
                    mechid: int = 0) -> Submission:
        """Send the hotkey's u16 row: `set_mechanism_weights` where the runtime has it, else `set_weights`
        (mechanism 0 only); a timelocked commit where the subnet has commit-reveal enabled."""
        keypair = getattr(hotkey, "keypair", hotkey)
        si = self._head_runtime()
        if len(uids) != len(weights):
            raise ValueError(f"set_weights: {len(uids)} uids but {len(weights)} weights")
        if self.commit_reveal_enabled(netuid):
            return self._commit_timelocked(si, netuid, uids, weights, version_key, keypair, mechid)
        args = {"netuid": netuid, "dests": list(uids), "weights": list(weights), "version_key": version_key}
        if self._has_call(si, "SubtensorModule", "set_mechanism_weights"):
            call = si.compose_call("SubtensorModule", "set_mechanism_weights", {**args, "mecid": mechid})
        elif mechid == 0:
            call = si.compose_call("SubtensorModule", "set_weights", args)
        else:
            raise ChainError(f"runtime spec {si.runtime_version} has no set_mechanism_weights; mechanism {mechid} "
                             f"of netuid {netuid} cannot be set")
        return self.submit(call, keypair)

    def _commit_timelocked(self, si, netuid, uids, weights, version_key, keypair, mechid) -> Submission:
        """CR v3 (chain_interface.md §6.4): encrypt the row for a drand round with bittensor-drand and
        send `commit_timelocked_(mechanism_)weights`. Anything missing raises CommitRevealUnavailable."""
        with_mechanism = self._has_call(si, "SubtensorModule", "commit_timelocked_mechanism_weights")
        if not with_mechanism and not self._has_call(si, "SubtensorModule", "commit_timelocked_weights"):
            raise CommitRevealUnavailable(
                f"netuid {netuid} has commit-reveal enabled, but runtime spec {si.runtime_version} has no timelocked "
                f"commit (commit_timelocked_weights); its hash commit-reveal (commit_weights, then reveal_weights "
                f"after the reveal period) is not implemented by yumaflow")
        try:
            from bittensor_drand import get_encrypted_commit_v2
        except ImportError:
            raise CommitRevealUnavailable(
                f"netuid {netuid} has commit-reveal enabled; committing needs {DRAND_REQUIREMENT} "
                f"(drand timelock encryption), which is not installed") from None
        values = [si.query("SubtensorModule", name, [netuid]).value
                  for name in _CR_SCHEDULE_STORAGE if self.storage_arity("SubtensorModule", name) is not None]
        if len(values) != len(_CR_SCHEDULE_STORAGE):
            raise CommitRevealUnavailable(
                f"runtime spec {si.runtime_version} lacks the epoch schedule storage {_CR_SCHEDULE_STORAGE} that "
                f"{DRAND_REQUIREMENT} needs to pick the reveal round")
        last_epoch, pending_at, epoch_index, tempo, since_step, reveal_epochs = values
        head = self.head_block(finalized=False)
        commit, reveal_round = get_encrypted_commit_v2(
            list(uids), list(weights), version_key, last_epoch, pending_at, epoch_index, tempo, since_step, head,
            reveal_epochs, BLOCK_TIME_S, keypair.public_key)
        version = si.query("SubtensorModule", "CommitRevealWeightsVersion", []).value
        args = {"netuid": netuid, "commit": "0x" + bytes(commit).hex(), "reveal_round": reveal_round,
                "commit_reveal_version": version}
        if with_mechanism:
            call = si.compose_call("SubtensorModule", "commit_timelocked_mechanism_weights", {**args, "mecid": mechid})
        else:
            call = si.compose_call("SubtensorModule", "commit_timelocked_weights", args)
        return self.submit(call, keypair)

    def serve_axon(self, netuid: int, ip: str, port: int, hotkey, protocol: int = AXON_PROTOCOL,
                   version: int = AXON_VERSION) -> Submission:
        """Publish the hotkey's axon (IPv4 or IPv6) with `serve_axon`, placeholders 0."""
        keypair = getattr(hotkey, "keypair", hotkey)
        address = ipaddress.ip_address(ip)
        si = self._head_runtime()
        call = si.compose_call("SubtensorModule", "serve_axon", {
            "netuid": netuid, "version": version, "ip": int(address), "port": port, "ip_type": address.version,
            "protocol": protocol, "placeholder1": 0, "placeholder2": 0})
        return self.submit(call, keypair)
