"""`SubstrateChain`: the ChainClient and ChainWriter for a Subtensor node (`ws://`, `wss://`) or a recording.

substrate-interface 1.8.1 is the JSON-RPC client (websocket transport, record and replay); it loads no
runtime and decodes nothing. Every answer is decoded, and every extrinsic composed and signed, with
the metadata of the runtime that produced it (V15, fetched once per spec version and cached) through
the chain's own codec, bittensor-core (tasks/chain/runtime.py). Fields are taken by name
(tasks/chain/needs.py); nothing here is keyed by spec version.

Reads of one snapshot are pinned to one block hash (chain_interface.md §2.2). State at a block is
written by the runtime of its parent, and `state_call` at the block runs the block's own code, which is
the parent's unless the block itself upgraded the runtime (its header then carries
`RuntimeEnvironmentUpdated`): that runtime's metadata decodes both.

Neurons come from get_selective_mechagraph(netuid, mechanism 0, every index) where the runtime has it
(one round trip), plus get_neurons_lite for validator_trust; runtimes before the metagraph API (spec
218) answer get_neurons_lite and their hyperparameters as opaque bytes (tasks/chain/legacy.py), and
stakes come from storage.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import threading
from dataclasses import dataclass

import polars as pl
from substrateinterface import SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from websocket import WebSocketException

from schemas import chain as tables
from tasks.chain import legacy, needs, scale
from tasks.chain.errors import (
    ChainConnectionError,
    ChainDecodeError,
    ChainError,
    ChainRpcError,
    CommitRevealUnavailable,
    RecordingMissError,
    RuntimeMismatch,
)
from tasks.chain.interface import PARTS, Commit, Snapshot, Submission, check_parts
from tasks.chain.runtime import V15_REQUEST, RuntimeCodec, codec_for, strip_option_opaque_metadata, take
from tasks.chain.transport import ReconnectingTransport, RecordingTransport, ReplayTransport
from tasks.consensus.commit_window import earliest_unexpired_commit_blocks

log = logging.getLogger(__name__)

SS58_FORMAT = 42
# NetUidStorageIndex = mechid * GLOBAL_MAX_SUBNET_COUNT + netuid (chain_interface.md §2.3).
GLOBAL_MAX_SUBNET_COUNT = 4096
# Header digest item `RuntimeEnvironmentUpdated` (sp_runtime DigestItem index 8): this block set new code.
_RUNTIME_UPDATED_DIGEST = "0x08"
ROOT_NETUID = 0
U64_MAX = 2**64 - 1  # TaoWeight is a u64 fraction of u64::MAX
# Writes: the SDK's mortal era, and the axon defaults it serves with.
ERA_PERIOD_BLOCKS = 128
AXON_VERSION = 1
AXON_PROTOCOL = 4
MAINNET_BLOCK_TIME_S = 12.0  # when a runtime declares no Aura.SlotDuration
# Runtime APIs answered opaque Vec<u8> before this spec (chain_interface.md §4); only those use legacy.py.
FIRST_DESCRIBED_API_SPEC = 233
SALT_LENGTH = 8  # u16 words of a hash commit's salt (as the SDK's commit_weights)


@dataclass(frozen=True)
class Pinned:
    """A block every read of one snapshot uses, and the runtime that decodes it."""

    block: int
    block_hash: str
    spec_version: int
    codec: RuntimeCodec


def axon_ip(ip: int, ip_type: int) -> str | None:
    """The axon's address as text; None for a neuron that never served (ip 0)."""
    if ip == 0:
        return None
    if ip_type == 4:
        return str(ipaddress.IPv4Address(ip & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(ip))


def _blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _settings_value(column: str, value):
    """A settings storage value as the subnets column holds it (enums by variant name)."""
    if column in ("liquid_alpha_consensus_mode", "epoch_consensus") and value is not None:
        if isinstance(value, dict):
            (value,) = value.keys()
        return str(value)
    if column == "mechanism_emission_split" and value is not None:
        return [int(v) for v in value]
    return value


class SubstrateChain:
    """ChainClient and ChainWriter for a Subtensor node (`ws://…`, `wss://…`) or a recording (`replay:PATH`).

    record=PATH writes every JSON-RPC request/response of this client to PATH on close(), in the
    recording format `replay:` reads. The connection opens on first use. page_size is the
    state_getKeysPaged page for Weights/Bonds; 100 is what the recorded mainnet traffic used (a replay
    must repeat the recorded requests exactly).
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
        self._versions: dict[str, dict] = {}       # block hash -> state_getRuntimeVersion
        self._codecs: dict[int, RuntimeCodec] = {}  # spec version -> codec (metadata fetched once per spec)
        self._lock = threading.RLock()
        self.metadata_fetch_s: dict[int, float] = {}  # spec -> seconds to fetch and parse its metadata

    # -- connection -------------------------------------------------------------------------------

    @property
    def substrate(self) -> SubstrateInterface:
        """The JSON-RPC client (substrate-interface): requests only, no runtime loaded."""
        if self._si is None:
            options = dict(ss58_format=SS58_FORMAT, use_remote_preset=False, auto_discover=False)
            if self.source.startswith("replay:"):
                replay = ReplayTransport(self.source[len("replay:"):])
                si = SubstrateInterface(websocket=replay, **options)  # any object; the transport is swapped
                si.transport = replay
            else:
                try:
                    si = SubstrateInterface(url=self.source, ws_options=dict(self._ws_options), **options)
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

    def rpc(self, method: str, params: list, result_handler=None):
        """One JSON-RPC request; the `result`, or ChainRpcError naming method, params and the error."""
        try:
            response = self.substrate.rpc_request(method, params, result_handler=result_handler)
        except ChainError:
            raise
        except SubstrateRequestException as e:
            raise ChainRpcError(method, params, e.args[0] if e.args else str(e)) from e
        if result_handler is not None:
            return response
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

    # -- runtimes ---------------------------------------------------------------------------------

    def runtime_version(self, block_hash: str) -> dict:
        version = self._versions.get(block_hash)
        if version is None:
            version = self.rpc("state_getRuntimeVersion", [block_hash])
            if not isinstance(version, dict) or "specVersion" not in version:
                raise ChainDecodeError("state_getRuntimeVersion", block_hash, f"not a runtime version: {version!r:.80}")
            self._versions[block_hash] = version
        return version

    def _code_hash(self, block_hash: str) -> str:
        """The hash whose runtime decodes `block_hash`: the parent's, unless the block set new code."""
        header = self._header(block_hash)
        if any(log_item.startswith(_RUNTIME_UPDATED_DIGEST) for log_item in header.get("digest", {}).get("logs", [])):
            return block_hash
        parent = header["parentHash"]
        return block_hash if int(parent, 16) == 0 else parent

    def codec_at(self, block_hash: str) -> RuntimeCodec:
        """The runtime codec for reads at `block_hash` (its metadata fetched once per spec version)."""
        at = self._code_hash(block_hash)
        version = self.runtime_version(at)
        spec = int(version["specVersion"])
        with self._lock:
            codec = self._codecs.get(spec)
            if codec is None:
                codec = self._codecs[spec] = self._load_codec(version, at)
        return codec

    def _load_codec(self, version: dict, at: str) -> RuntimeCodec:
        import time

        started = time.perf_counter()
        spec = int(version["specVersion"])
        metadata = None
        try:
            answer = self.rpc("state_call", ["Metadata_metadata_at_version", V15_REQUEST, at])
            metadata = strip_option_opaque_metadata(bytes.fromhex(answer.removeprefix("0x"))) if answer else None
        except (ChainRpcError, RecordingMissError) as e:
            # A runtime too old for V15 has no Metadata_metadata_at_version; a recording may not hold it.
            log.info("runtime %s serves no V15 metadata (%s); reading V14", spec, str(e)[:120])
        except ValueError as e:
            raise ChainDecodeError("Metadata_metadata_at_version", at, str(e)) from None
        if metadata is None:
            answer = self.rpc("state_getMetadata", [at])
            if not isinstance(answer, str):
                raise ChainDecodeError("state_getMetadata", at, f"no metadata: {answer!r:.80}")
            metadata = bytes.fromhex(answer.removeprefix("0x"))
        transaction_version = int(version.get("transactionVersion", 0))
        codec = codec_for(metadata, spec, transaction_version, str(version.get("specName", "")))
        self.metadata_fetch_s[spec] = time.perf_counter() - started
        return codec

    def pin(self, block: int) -> Pinned:
        """Resolve `block` to its hash and the runtime that decodes it."""
        block_hash = self.block_hash(block)
        header = self._header(block_hash)
        if int(header["number"], 16) != block:
            raise ChainError(f"chain_getHeader({block_hash}) says block {int(header['number'], 16)}, "
                             f"expected {block}")
        codec = self.codec_at(block_hash)
        return Pinned(block, block_hash, codec.spec_version, codec)

    # -- runtime APIs -----------------------------------------------------------------------------

    def runtime_api(self, pinned: Pinned, api: str, method: str, **params):
        """Call a runtime API at the pinned block; the answer decoded by the runtime's declared type
        (or, for opaque pre-233 answers, the frozen legacy layout)."""
        codec = pinned.codec
        name = f"{api}_{method}"
        if codec.api(api, method) is None and codec.is_v15:
            raise RuntimeMismatch(name, codec.spec_version, "the runtime has no such API method")
        opaque = not codec.is_v15 or codec.api_is_opaque(api, method)
        if not codec.is_v15 and codec.spec_version >= FIRST_DESCRIBED_API_SPEC:
            raise RuntimeMismatch(name, codec.spec_version, "the runtime serves no V15 metadata, whose runtime-API "
                                                            "types yumaflow decodes by name")
        if opaque:
            if name not in legacy.OPAQUE_ANSWERS:
                raise RuntimeMismatch(name, codec.spec_version, "answers opaque bytes that yumaflow has no layout for")
            # pre-233 parameters were plain u16s (the only ones yumaflow sends there)
            params_hex = "".join(int(v).to_bytes(2, "little").hex() for v in params.values())
        else:
            params_hex = codec.encode_api_params(api, method, **params)
        result = self.rpc("state_call", [name, "0x" + params_hex, pinned.block_hash])
        data = self._hex_bytes(name, pinned, result)
        if not opaque:
            return codec.decode_api(api, method, data, pinned.block)
        try:
            return scale.decode(legacy.OPAQUE_ANSWERS[name], data, wrapped=True)
        except scale.Truncated as e:
            raise ChainDecodeError(name, pinned.block, f"{legacy.OPAQUE_ANSWERS[name]} (legacy layout, spec "
                                                      f"{pinned.spec_version}): {e}") from None

    @staticmethod
    def _hex_bytes(method: str, pinned: Pinned, hex_data) -> bytes:
        if not isinstance(hex_data, str) or not hex_data.startswith("0x"):
            raise ChainDecodeError(method, pinned.block, f"expected a 0x-prefixed hex string, got {hex_data!r:.80}")
        try:
            return bytes.fromhex(hex_data[2:])
        except ValueError as e:
            raise ChainDecodeError(method, pinned.block, f"not hex: {e}") from None

    # -- storage ----------------------------------------------------------------------------------

    def storage_values(self, pinned: Pinned, items: list[tuple[needs.Needs, list]]) -> list:
        """Storage values in `items` order, read in one state_queryStorageAt at the pinned block.

        An item this runtime lacks gives None; a missing entry gives the item's declared default, as the
        chain itself would read it (None for an Optional item).
        """
        codec = pinned.codec
        keys, where, entries = [], [], []
        for i, (item, params) in enumerate(items):
            entry = codec.storage(item.pallet_or_api, item.name)
            if entry is None:
                continue
            codec.check(item)
            keys.append(codec.storage_key(item.pallet_or_api, item.name, params))
            where.append(i)
            entries.append(entry)
        values: list = [None] * len(items)
        if not keys:
            return values
        changes = self.rpc("state_queryStorageAt", [keys, pinned.block_hash])
        try:
            stored = {key: value for group in changes for key, value in group["changes"]}
        except (TypeError, KeyError, ValueError):
            raise ChainDecodeError("state_queryStorageAt", pinned.block, f"not a list of changes: {changes!r:.120}") \
                from None
        for key, i, entry in zip(keys, where, entries, strict=True):
            if key not in stored:
                raise ChainDecodeError("state_queryStorageAt", pinned.block,
                                       f"the node returned no entry for {items[i][0].label}{items[i][1]}")
            values[i] = codec.decode_storage(entry, stored[key], pinned.block)
        return values

    def storage_rows(self, pinned: Pinned, item: needs.Needs, netuid_index: int) -> list[tuple[int, list]]:
        """Every (uid, value) of a double map keyed (NetUidStorageIndex, uid), e.g. Weights, by uid."""
        rows = [(int(uid), [tuple(p) for p in value]) for uid, value in self.storage_pairs(pinned, item, netuid_index)]
        rows.sort(key=lambda row: row[0])
        return rows

    def storage_pairs(self, pinned: Pinned, item: needs.Needs, first_key) -> list[tuple[object, object]]:
        """Every (second key, value) of a double map under its first key, as the runtime's codec decodes them.

        Paged as substrate-interface's query_map pages (state_getKeysPaged, then state_queryStorageAt
        per page, until an empty page); keys and values decode with the runtime's codec in one call a page.
        """
        codec = pinned.codec
        if codec.storage(item.pallet_or_api, item.name) is None:
            raise RuntimeMismatch(item.label, codec.spec_version, "storage item not in this runtime's metadata")
        codec.check(item)
        prefix = codec.storage_key(item.pallet_or_api, item.name, [first_key])
        rows, start_key = [], prefix
        while True:
            keys = self.rpc("state_getKeysPaged", [prefix, self.page_size, start_key, pinned.block_hash])
            if not keys:
                break
            changes = self.rpc("state_queryStorageAt", [keys, pinned.block_hash])
            pairs = [(key, value) for group in changes for key, value in group["changes"] if value is not None]
            try:
                decoded = codec.core.decode_map_changes(item.pallet_or_api, item.name, pairs, 1)
            except Exception as e:
                raise ChainDecodeError(f"{item.label}[{first_key}]", pinned.block,
                                       f"a page of {len(pairs)} entries does not decode as runtime spec "
                                       f"{codec.spec_version} declares: {e}") from None
            rows.extend((key[0] if isinstance(key, (list, tuple)) else key, value) for key, value in decoded)
            start_key = keys[-1]
        return rows

    def weight_commits(self, pinned: Pinned, netuid_index: int) -> tuple[dict[str, list[tuple]], list[tuple]]:
        """The pending weight commits of a mechanism, as stored: hotkey -> its WeightCommits queue (tuples as
        stored, queue order), and (commit_epoch, hotkey, commit_block) of every TimelockedWeightCommits entry.
        An item the runtime lacks contributes nothing."""
        hash_queues: dict[str, list[tuple]] = {}
        timelocked: list[tuple] = []
        if pinned.codec.storage(needs.MODULE, needs.HASH_COMMITS.name) is not None:
            hash_queues = {str(hotkey): [tuple(entry) for entry in queue]
                           for hotkey, queue in self.storage_pairs(pinned, needs.HASH_COMMITS, netuid_index)}
        if pinned.codec.storage(needs.MODULE, needs.TIMELOCKED_COMMITS.name) is not None:
            for commit_epoch, queue in self.storage_pairs(pinned, needs.TIMELOCKED_COMMITS, netuid_index):
                timelocked.extend((int(commit_epoch), str(entry[0]), int(entry[1])) for entry in queue)
        return hash_queues, timelocked

    def commit_blocks(self, pinned: Pinned, netuid: int, hotkeys: list[str],
                      settings: dict | None = None) -> list[int | None]:
        """Per uid, the block of its earliest unexpired weight commit as the epoch after `pinned` will see
        it (the commit-reveal mask's c_i; None: no such commit). `settings`: the subnet's `subnet_settings`
        at `pinned` when the caller has read them already (else its schedule items are read here).

        Read on runtimes with the stateful epoch schedule (SubnetEpochIndex), whose commit layouts the
        current subtensor code defines; earlier runtimes give None for every uid (not read: the commit
        tuples meant other things then, README "Epoch variants").
        """
        codec = pinned.codec
        if codec.storage(needs.MODULE, "SubnetEpochIndex") is None:
            return [None] * len(hotkeys)
        if settings is None:
            settings = dict(zip(("subnet_epoch_index", "reveal_period_epochs"), self.storage_values(pinned, [
                (needs.SUBNET_STORAGE["subnet_epoch_index"], [netuid]),
                (needs.SUBNET_STORAGE["reveal_period_epochs"], [netuid])]), strict=True))
        epoch_index, reveal_period = settings["subnet_epoch_index"], settings["reveal_period_epochs"]
        hash_queues, timelocked = self.weight_commits(pinned, netuid)
        earliest = earliest_unexpired_commit_blocks(
            {hotkey: [(int(e[1]), int(e[2])) for e in queue] for hotkey, queue in hash_queues.items()},
            timelocked, int(epoch_index or 0) + 1, int(reveal_period if reveal_period is not None else 1))
        return [earliest.get(hotkey) for hotkey in hotkeys]

    # -- the snapshot -----------------------------------------------------------------------------

    def snapshot(self, netuid: int, block: int, parts: tuple[str, ...] = PARTS) -> Snapshot:
        parts = check_parts(parts)
        pinned = self.pin(block)
        out: dict[str, pl.DataFrame] = {}
        has_metagraph = pinned.codec.api(needs.SELECTIVE_MECHAGRAPH.pallet_or_api,
                                         needs.SELECTIVE_MECHAGRAPH.name) is not None
        metagraph = lite = None
        if ("neurons" in parts or "subnets" in parts) and has_metagraph:
            metagraph = self.metagraph(pinned, netuid)
        if "neurons" in parts or ("subnets" in parts and metagraph is None):
            lite = self.neurons_lite(pinned, netuid, metagraph)
        settings = self.subnet_settings(pinned, netuid) if "subnets" in parts else None  # read once, used by both
        if "blocks" in parts:
            out["blocks"] = self._blocks_frame(pinned)
        if "neurons" in parts:
            out["neurons"] = self._neurons_frame(pinned, netuid, metagraph, lite, settings)
        if "subnets" in parts:
            out["subnets"] = self._subnets_frame(pinned, netuid, metagraph, lite, settings)
        if "weights" in parts or "bonds" in parts:
            mechanisms = self.mechanism_count(pinned, netuid)
            for part, item, column in (("weights", needs.WEIGHTS, "weight"), ("bonds", needs.BONDS, "bond")):
                if part in parts:
                    out[part] = self._edges_frame(pinned, netuid, mechanisms, item, column)
        return Snapshot(netuid=netuid, block=block, block_hash=pinned.block_hash,
                        spec_version=pinned.spec_version, **out).validate()

    def metagraph(self, pinned: Pinned, netuid: int, mechid: int = 0) -> dict:
        """get_selective_mechagraph(netuid, mechid, every index the runtime declares), needed fields by name."""
        item = needs.SELECTIVE_MECHAGRAPH
        codec = pinned.codec
        codec.check(item)
        declared = codec.declared_shape(item)
        indexes = list(range(len(declared)))  # SelectiveMetagraphIndex: one index per field, in order
        answer = self.runtime_api(pinned, item.pallet_or_api, item.name, netuid=netuid, subid=mechid,
                                  metagraph_indexes=indexes)
        if answer is None:
            raise ChainError(f"subnet {netuid} (mechanism {mechid}) does not exist at block {pinned.block}")
        metagraph = take(answer, item, codec)
        missing = [name for name, value in metagraph.items() if value is None]
        if missing:
            raise ChainDecodeError(item.label, pinned.block, f"fields asked for but not returned: {', '.join(missing)}")
        n = metagraph["num_uids"]
        for field, shape in item.fields.items():
            if shape[1][0] == "list" and len(metagraph[field]) != n:
                raise ChainDecodeError(item.label, pinned.block,
                                       f"{field} has {len(metagraph[field])} entries for {n} uids")
        return metagraph

    def neurons_lite(self, pinned: Pinned, netuid: int, metagraph: dict | None = None) -> list[dict]:
        """get_neurons_lite, sorted by uid; checked against the metagraph's hotkeys when given."""
        item = needs.NEURONS_LITE
        name = item.label
        if pinned.codec.is_v15 and not pinned.codec.api_is_opaque(item.pallet_or_api, item.name):
            pinned.codec.check(item)
        lite = self.runtime_api(pinned, item.pallet_or_api, item.name, netuid=netuid)
        if lite is None:  # pre-233 runtimes answer an empty Vec<u8> for a missing subnet
            raise ChainError(f"subnet {netuid} does not exist at block {pinned.block}")
        lite = sorted(lite, key=lambda neuron: neuron["uid"])
        if [neuron["uid"] for neuron in lite] != list(range(len(lite))):
            raise ChainDecodeError(name, pinned.block, "uids are not 0..n-1")
        if metagraph is not None:
            if len(lite) != metagraph["num_uids"]:
                raise ChainDecodeError(name, pinned.block,
                                       f"{len(lite)} neurons, the metagraph has {metagraph['num_uids']} uids")
            for neuron, hotkey in zip(lite, metagraph["hotkeys"], strict=True):
                if neuron["hotkey"] != hotkey:
                    raise ChainDecodeError(name, pinned.block,
                                           f"uid {neuron['uid']}: neurons lite has hotkey {neuron['hotkey']}, "
                                           f"the metagraph has {hotkey}")
        return lite

    def mechanism_count(self, pinned: Pinned, netuid: int) -> int:
        (count,) = self.storage_values(pinned, [(needs.SUBNET_STORAGE["mechanism_count"], [netuid])])
        return int(count or 1)

    def _blocks_frame(self, pinned: Pinned) -> pl.DataFrame:
        (now,) = self.storage_values(pinned, [(needs.TIMESTAMP_NOW, [])])
        if now is None:
            raise RuntimeMismatch("Timestamp.Now", pinned.spec_version, "storage item missing from the runtime")
        return pl.DataFrame({"block": [pinned.block], "block_hash": [pinned.block_hash],
                             "spec_version": [pinned.spec_version], "timestamp_ms": [now],
                             "source": [self.source]}, schema=tables.BLOCKS.polars_schema())

    def _neurons_frame(self, pinned: Pinned, netuid: int, metagraph: dict | None, lite: list[dict],
                       settings: dict | None = None):
        n = len(lite)
        data = {"netuid": [netuid] * n, "block": [pinned.block] * n, "uid": list(range(n))}
        if metagraph is not None:
            data.update({
                "hotkey": metagraph["hotkeys"], "coldkey": metagraph["coldkeys"],
                "alpha_stake": metagraph["alpha_stake"], "tao_stake": metagraph["tao_stake"],
                "total_stake": metagraph["total_stake"], "emission": metagraph["emission"],
                "consensus": metagraph["consensus"], "incentive": metagraph["incentives"],
                "dividends": metagraph["dividends"], "active": metagraph["active"],
                "validator_permit": metagraph["validator_permit"], "last_update": metagraph["last_update"],
                "block_at_registration": metagraph["block_at_registration"]})
            axons = metagraph["axons"]
        else:
            for column in ("hotkey", "coldkey", "emission", "consensus", "incentive", "dividends", "active",
                           "validator_permit", "last_update"):
                data[column] = [neuron[column] for neuron in lite]
            data.update(self._stakes_from_storage(pinned, netuid, data["hotkey"]))
            axons = [neuron["axon_info"] for neuron in lite]
        # validator_trust is not in the metagraph (chain_interface.md §3)
        data["validator_trust"] = [neuron["validator_trust"] for neuron in lite]
        data["axon_ip"] = [axon_ip(a["ip"], a["ip_type"]) for a in axons]
        data["axon_port"] = [a["port"] if a["ip"] else None for a in axons]
        data["axon_protocol"] = [a["protocol"] if a["ip"] else None for a in axons]
        # The commit-reveal mask's input, where the subnet runs commit-reveal (mechanism 0's commits).
        commit_reveal = (metagraph or {}).get("commit_reveal_weights_enabled")
        data["commit_block"] = (self.commit_blocks(pinned, netuid, data["hotkey"], settings) if commit_reveal
                                else [None] * n)
        return pl.DataFrame(data, schema=tables.NEURONS.polars_schema())

    def _tao_weight_params(self, pinned: Pinned, netuid: int) -> list:
        # TaoWeight is one global value, but was a per-netuid map in spec 218 (local_chain.md §6).
        entry = pinned.codec.storage(needs.MODULE, "TaoWeight")
        return [netuid][:len(entry.param_types)] if entry is not None else []

    def _stakes_from_storage(self, pinned: Pinned, netuid: int, hotkeys: list[str]) -> dict[str, list]:
        """Stakes and registration blocks where the runtime has no metagraph API (spec 218).

        Raw per-hotkey totals: alpha = TotalHotkeyAlpha(hotkey, netuid), tao = the hotkey's root
        stake TotalHotkeyAlpha(hotkey, 0), total = alpha + tao × TaoWeight / (2^64 − 1). Child-key
        delegation, which the metagraph API folds in, is not applied here.
        """
        registration, alpha = needs.storage("BlockAtRegistration"), needs.storage("TotalHotkeyAlpha")
        if pinned.codec.storage(needs.MODULE, "TotalHotkeyAlpha") is None:
            raise RuntimeMismatch("SubtensorModule.TotalHotkeyAlpha", pinned.spec_version,
                                  "pre-dTAO stake (TAO per hotkey) has no reader; snapshots need a dTAO runtime")
        n = len(hotkeys)
        items = ([(registration, [netuid, uid]) for uid in range(n)]
                 + [(alpha, [hotkey, netuid]) for hotkey in hotkeys]
                 + [(alpha, [hotkey, ROOT_NETUID]) for hotkey in hotkeys]
                 + [(needs.SUBNET_STORAGE["tao_weight"], self._tao_weight_params(pinned, netuid))])
        values = self.storage_values(pinned, items)
        registered, alpha, tao, tao_weight = values[:n], values[n:2 * n], values[2 * n:3 * n], values[-1]
        if None in registered or None in alpha or None in tao or tao_weight is None:
            raise ChainDecodeError("state_queryStorageAt", pinned.block,
                                   "BlockAtRegistration/TotalHotkeyAlpha/TaoWeight missing from the runtime")
        total = [a + t * tao_weight // U64_MAX for a, t in zip(alpha, tao, strict=True)]
        return {"block_at_registration": registered, "alpha_stake": alpha, "tao_stake": tao, "total_stake": total}

    def subnet_settings(self, pinned: Pinned, netuid: int) -> dict:
        """The subnet's epoch and weight rules and global settings from storage, by column (None where the
        runtime lacks the item: never guessed). Each item is keyed as the runtime declares it: none (a
        global), the netuid, or (netuid, mechanism 0)."""
        columns, items = [], []
        for column, item in needs.SUBNET_STORAGE.items():
            entry = pinned.codec.storage(item.pallet_or_api, item.name)
            keys = len(entry.param_types) if entry is not None else 0
            if keys > 2:
                continue  # keyed in a way yumaflow does not read: left null
            columns.append(column)
            items.append((item, [netuid, 0][:keys]))
        values = self.storage_values(pinned, items)
        settings = dict.fromkeys(needs.SUBNET_STORAGE)
        settings.update({column: _settings_value(column, value) for column, value in zip(columns, values, strict=True)})
        if settings["mechanism_emission_split"] is None and pinned.codec.storage(needs.MODULE,
                                                                                 "MechanismEmissionSplit"):
            settings["mechanism_emission_split"] = []  # no entry: the chain splits evenly
        return settings

    def _subnets_frame(self, pinned: Pinned, netuid: int, metagraph: dict | None, lite: list[dict] | None,
                       settings: dict):
        if metagraph is None:  # spec 218: what the metagraph would carry, from storage and legacy hyperparams
            source = self._subnet_source_without_metagraph(pinned, netuid)
            hotkeys = [neuron["hotkey"] for neuron in lite]
        else:
            source, hotkeys = metagraph, metagraph["hotkeys"]
        owner = source["owner_hotkey"]
        row = {
            "netuid": netuid, "block": pinned.block, "subnetwork_n": source["num_uids"], "tempo": source["tempo"],
            "owner_hotkey": owner, "owner_uid": hotkeys.index(owner) if owner in hotkeys else None,
            "kappa": source["kappa"], "bonds_penalty": settings["bonds_penalty"],
            "bonds_moving_avg": source["bonds_moving_avg"], "yuma3_enabled": settings["yuma3_enabled"],
            "liquid_alpha_enabled": source["liquid_alpha_enabled"], "alpha_low": source["alpha_low"],
            "alpha_high": source["alpha_high"], "alpha_sigmoid_steepness": settings["alpha_sigmoid_steepness"],
            "activity_cutoff": source["activity_cutoff"],
            "activity_cutoff_factor_milli": settings["activity_cutoff_factor_milli"],
            "max_allowed_validators": source["max_validators"], "max_allowed_uids": source["max_uids"],
            "min_allowed_weights": source["min_allowed_weights"], "max_weight_limit": source["max_weights_limit"],
            "weights_version": source["weights_version"], "weights_rate_limit": source["weights_rate_limit"],
            "immunity_period": source["immunity_period"],
            "commit_reveal_enabled": source["commit_reveal_weights_enabled"],
            "last_mechanism_step_block": source["last_step"], "mechanism_count": settings["mechanism_count"],
            "tao_weight": settings["tao_weight"], "stake_threshold": settings["stake_threshold"],
            "pending_emission": source["pending_alpha_emission"],
            **{column: settings[column] for column in tables.SUBNET_SETTINGS_COLUMNS},
        }
        return pl.DataFrame([row], schema=tables.SUBNETS.polars_schema())

    def _subnet_source_without_metagraph(self, pinned: Pinned, netuid: int) -> dict:
        hp = self.runtime_api(pinned, *needs.HYPERPARAMS_OPAQUE, netuid=netuid)
        if hp is None:
            raise ChainError(f"subnet {netuid} does not exist at block {pinned.block}")
        names = list(needs.SUBNET_STORAGE_WITHOUT_METAGRAPH)
        values = self.storage_values(pinned, [(needs.SUBNET_STORAGE_WITHOUT_METAGRAPH[name], [netuid])
                                              for name in names])
        stored = dict(zip(names, values, strict=True))
        if None in stored.values():
            missing = [k for k, v in stored.items() if v is None]
            raise ChainDecodeError("state_queryStorageAt", pinned.block, f"subnet storage missing: {missing}")
        return {**hp, **stored}

    def _edges_frame(self, pinned: Pinned, netuid: int, mechanisms: int, item: needs.Needs, column: str):
        mechids, validators, miners, values = [], [], [], []
        for mechid in range(mechanisms):
            for uid, pairs in self.storage_rows(pinned, item, mechid * GLOBAL_MAX_SUBNET_COUNT + netuid):
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

    def head_pin(self) -> Pinned:
        """The best head, pinned: writes are composed and signed against its runtime."""
        return self.pin(self.head_block(finalized=False))

    def genesis_hash(self) -> str:
        return self.block_hash(0)

    def compose_call(self, pallet: str, call: str, args: dict, pinned: Pinned | None = None) -> bytes:
        """A call's SCALE bytes, composed by name with the head runtime's declared argument types."""
        pinned = pinned or self.head_pin()
        return pinned.codec.compose_call(pallet, call, args)

    def block_time_s(self, pinned: Pinned) -> float:
        """Seconds per block from the runtime's Aura.SlotDuration (12 on mainnet)."""
        try:
            slot_ms = pinned.codec.constant("Aura", "SlotDuration")
        except Exception:
            slot_ms = None
        return int(slot_ms) / 1000.0 if slot_ms else MAINNET_BLOCK_TIME_S

    def sign(self, call: bytes, keypair, pinned: Pinned, *, nonce: int | None = None,
             metadata_hash: bool = False) -> tuple[bytes, str]:
        """`sign_extrinsic` for the pinned head: nonce from system_accountNextIndex, mortal from the head."""
        import bittensor_core

        if nonce is None:
            nonce = int(self.rpc("system_accountNextIndex", [keypair.ss58_address]))
        era_block_hash = self.block_hash(bittensor_core.era_birth(ERA_PERIOD_BLOCKS, pinned.block))
        return sign_extrinsic(pinned.codec, call, keypair, nonce=nonce, head=pinned.block,
                              genesis_hash=self.genesis_hash(), era_block_hash=era_block_hash,
                              metadata_hash=metadata_hash)

    def submit(self, call: bytes, keypair, *, metadata_hash: bool = False) -> Submission:
        """Sign `call` with `keypair` against the head runtime, submit it and wait until a block includes
        it. The chain's answers come back in the Submission: a transaction the pool rejects has block
        None; a dispatch failure names the module error."""
        keypair = getattr(keypair, "keypair", keypair)  # a wallet Hotkey or a bare keypair
        pinned = self.head_pin()
        data, extrinsic_hash = self.sign(call, keypair, pinned, metadata_hash=metadata_hash)

        def included(message, _update_nr, subscription_id):
            result = message.get("params", {}).get("result")
            if isinstance(result, dict):
                status = {k.lower(): v for k, v in result.items()}
                if "inblock" in status or "finalized" in status:
                    self.substrate.rpc_request("author_unwatchExtrinsic", [subscription_id])
                    return status.get("inblock") or status["finalized"]
                for fatal in ("usurped", "retracted", "finalitytimeout", "dropped", "invalid"):
                    if fatal in status:
                        raise SubstrateRequestException(f"extrinsic {fatal}: {result}")
            elif result in ("dropped", "invalid", "usurped"):
                raise SubstrateRequestException(f"extrinsic {result}")

        try:
            block_hash = self.rpc("author_submitAndWatchExtrinsic", ["0x" + data.hex()], result_handler=included)
        except (ChainRpcError, SubstrateRequestException, ValueError) as e:
            detail = getattr(e, "error", None) or (e.args[0] if e.args else str(e))
            if isinstance(detail, dict):
                detail = f"{detail.get('message', '')} {detail.get('data', '')}".strip()
            return Submission(ok=False, block=None, extrinsic_hash=extrinsic_hash, error=f"rejected: {detail}")
        block = int(self._header(block_hash)["number"], 16)
        events = self.extrinsic_events(block_hash, data)
        names = tuple(f"{e['pallet']}.{e['event']}" for e in events)
        error = next((e["error"] for e in events if e["event"] == "ExtrinsicFailed"), None)
        ok = error is None and "System.ExtrinsicSuccess" in names
        if not ok and error is None:
            error = "no System.ExtrinsicSuccess event"
        return Submission(ok=ok, block=block, extrinsic_hash=extrinsic_hash, events=names, error=error)

    def extrinsic_events(self, block_hash: str, extrinsic: bytes) -> list[dict]:
        """The events of one extrinsic of a block: [{pallet, event, error}] (error: 'Pallet.Error' of an
        ExtrinsicFailed), decoded with the block's runtime."""
        block = self.rpc("chain_getBlock", [block_hash])
        body = [bytes.fromhex(x.removeprefix("0x")) for x in block["block"]["extrinsics"]]
        wanted = _blake2_256(extrinsic)
        index = next((i for i, x in enumerate(body) if _blake2_256(x) == wanted), None)
        if index is None:
            raise ChainError(f"block {block_hash} does not hold the extrinsic 0x{wanted.hex()}")
        pinned = Pinned(int(self._header(block_hash)["number"], 16), block_hash, 0, self._codec_of_block(block_hash))
        (records,) = self.storage_values(pinned, [(needs.EVENTS, [])])
        out = []
        for record in records or []:
            # bittensor-core decodes System.Events as {phase, extrinsic_idx, module_id, event_id, attributes}
            if record.get("phase") != "ApplyExtrinsic" or record.get("extrinsic_idx") != index:
                continue
            pallet, event = record["module_id"], record["event_id"]
            error = self._dispatch_error(pinned.codec, record.get("attributes")) if event == "ExtrinsicFailed" \
                else None
            out.append({"pallet": pallet, "event": event, "error": error})
        return out

    def _codec_of_block(self, block_hash: str) -> RuntimeCodec:
        # Events of a block are written by the block's own code (its state, not its parent's).
        version = self.runtime_version(block_hash)
        spec = int(version["specVersion"])
        with self._lock:
            if spec not in self._codecs:
                self._codecs[spec] = self._load_codec(version, block_hash)
            return self._codecs[spec]

    @staticmethod
    def _dispatch_error(codec: RuntimeCodec, attributes) -> str:
        error = attributes.get("dispatch_error", attributes) if isinstance(attributes, dict) else attributes
        if isinstance(error, dict) and "Module" in error:
            module = error["Module"]
            index, code = module.get("index"), module.get("error")
            if isinstance(code, (bytes, bytearray, list, tuple)):
                code = code[0]
            elif isinstance(code, str):
                code = int(code.removeprefix("0x")[:2], 16)
            return codec.module_error(int(index), int(code))
        if isinstance(error, dict):
            return ".".join(str(x) for x in next(iter(error.items())) if x is not None)
        return str(error)

    def commit_reveal_enabled(self, netuid: int) -> bool:
        """CommitRevealWeightsEnabled of the subnet at the best head."""
        pinned = self.head_pin()
        (enabled,) = self.storage_values(pinned, [(needs.storage("CommitRevealWeightsEnabled", needs.BOOL), [netuid])])
        return bool(enabled)

    def push_method(self, netuid: int, pinned: Pinned | None = None) -> str:
        """How this runtime takes a weight row on this subnet: set_weights, commit_timelocked or commit_hash
        (CommitRevealUnavailable when the subnet needs a commit the runtime cannot take)."""
        pinned = pinned or self.head_pin()
        codec = pinned.codec
        (enabled,) = self.storage_values(pinned, [(needs.storage("CommitRevealWeightsEnabled", needs.BOOL), [netuid])])
        if not enabled:
            return "set_weights"
        if codec.has_call(needs.MODULE, "commit_timelocked_mechanism_weights") or \
                codec.has_call(needs.MODULE, "commit_timelocked_weights"):
            return "commit_timelocked"
        if codec.has_call(needs.MODULE, "commit_weights") and codec.has_call(needs.MODULE, "reveal_weights"):
            return "commit_hash"
        raise CommitRevealUnavailable(f"netuid {netuid} has commit-reveal enabled, but runtime spec "
                                      f"{codec.spec_version} has neither a timelocked nor a hash commit call")

    def set_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey,
                    mechid: int = 0) -> Submission:
        """Send the hotkey's u16 row with `set_mechanism_weights` where the runtime has it, else `set_weights`
        (mechanism 0 only). A subnet with commit-reveal is never sent plain weights: use `commit_weights`."""
        if len(uids) != len(weights):
            raise ValueError(f"set_weights: {len(uids)} uids but {len(weights)} weights")
        pinned = self.head_pin()
        codec = pinned.codec
        args = {"netuid": netuid, "dests": list(uids), "weights": list(weights), "version_key": version_key}
        if codec.has_call(needs.MODULE, "set_mechanism_weights"):
            call = codec.compose_call(needs.MODULE, "set_mechanism_weights", {**args, "mecid": mechid})
        elif mechid == 0:
            call = codec.compose_call(needs.MODULE, "set_weights", args)
        else:
            raise ChainError(f"runtime spec {codec.spec_version} has no set_mechanism_weights; mechanism {mechid} "
                             f"of netuid {netuid} cannot be set")
        return self.submit(call, hotkey)

    def commit_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey,
                       mechid: int = 0) -> Commit:
        """Commit the row on a commit-reveal subnet: a drand-timelocked commit, revealed by the chain
        itself at the reveal round (reveal round from the subnet's epoch schedule read at one pinned
        block, as the chain computes it), or, where the runtime has only that, a hash commit that
        `reveal_weights` opens once the reveal window is reached."""
        keypair = getattr(hotkey, "keypair", hotkey)
        pinned = self.head_pin()
        method = self.push_method(netuid, pinned)
        if method == "commit_timelocked":
            return self._commit_timelocked(pinned, netuid, uids, weights, version_key, keypair, mechid)
        if method == "commit_hash":
            return self._commit_hash(pinned, netuid, uids, weights, version_key, keypair, mechid)
        raise CommitRevealUnavailable(f"netuid {netuid} does not run commit-reveal at block {pinned.block}; "
                                      f"send set_weights")

    def _commit_timelocked(self, pinned, netuid, uids, weights, version_key, keypair, mechid) -> Commit:
        import bittensor_core

        codec = pinned.codec
        missing = [name for name in needs.COMMIT_SCHEDULE if codec.storage(needs.MODULE, name) is None]
        if missing:
            raise CommitRevealUnavailable(
                f"runtime spec {codec.spec_version} lacks the epoch schedule storage {', '.join(missing)} that the "
                f"timelocked commit's reveal round is computed from (bittensor-core get_encrypted_commit_v2)")
        values = self.storage_values(pinned, [(needs.storage(name), [netuid]) for name in needs.COMMIT_SCHEDULE])
        schedule = dict(zip(needs.COMMIT_SCHEDULE, (int(v or 0) for v in values), strict=True))
        commit, reveal_round = bittensor_core.get_encrypted_commit_v2(
            list(uids), list(weights), version_key, schedule["LastEpochBlock"], schedule["PendingEpochAt"],
            schedule["SubnetEpochIndex"], schedule["Tempo"], schedule["BlocksSinceLastStep"], pinned.block,
            schedule["RevealPeriodEpochs"], self.block_time_s(pinned), bytes(keypair.public_key))
        (version,) = self.storage_values(pinned, [(needs.SUBNET_STORAGE["commit_reveal_version"], [])])
        args = {"netuid": netuid, "commit": bytes(commit), "reveal_round": int(reveal_round),
                "commit_reveal_version": int(version)}
        if codec.has_call(needs.MODULE, "commit_timelocked_mechanism_weights"):
            call = codec.compose_call(needs.MODULE, "commit_timelocked_mechanism_weights", {**args, "mecid": mechid})
        elif mechid == 0:
            call = codec.compose_call(needs.MODULE, "commit_timelocked_weights", args)
        else:
            raise ChainError(f"runtime spec {codec.spec_version}: no timelocked commit for mechanism {mechid}")
        submission = self.submit(call, keypair)
        return Commit(submission=submission, method="commit_timelocked", reveal_round=int(reveal_round),
                      reveal_block=None, salt=None, call=call)

    def _commit_hash(self, pinned, netuid, uids, weights, version_key, keypair, mechid) -> Commit:
        if mechid != 0:
            raise CommitRevealUnavailable(f"runtime spec {pinned.spec_version}: hash commit-reveal for mechanism "
                                          f"{mechid} is not supported (commit_weights takes mechanism 0)")
        salt = [secrets.randbelow(1 << 16) for _ in range(SALT_LENGTH)]
        digest = commit_hash(keypair.public_key, netuid, uids, weights, salt, version_key)
        call = pinned.codec.compose_call(needs.MODULE, "commit_weights", {"netuid": netuid, "commit_hash": digest})
        submission = self.submit(call, keypair)
        reveal_block = None
        if submission.ok:
            reveal_block = self.hash_commit_window(netuid, keypair.ss58_address, digest, submission.block)[0]
        return Commit(submission=submission, method="commit_hash", reveal_round=None, reveal_block=reveal_block,
                      salt=salt, call=call)

    def hash_commit_window(self, netuid: int, hotkey_ss58: str, digest: bytes, block: int) -> tuple[int, int]:
        """(first, last) block in which the chain accepts the reveal of a hash commit, as the chain stored it.

        Runtimes with hash commits but no stateful epoch index store each commit as (hash, commit block,
        first reveal block, last reveal block) in WeightCommits[netuid][hotkey].
        """
        pinned = self.pin(block)
        if pinned.codec.storage(needs.MODULE, "SubnetEpochIndex") is not None:
            raise CommitRevealUnavailable(f"runtime spec {pinned.spec_version} keys hash commits by epoch; yumaflow "
                                          f"uses its timelocked commits instead")
        (commits,) = self.storage_values(pinned, [(needs.storage("WeightCommits", ("tuple", needs.ANY, needs.INT,
                                                                                   needs.INT, needs.INT)),
                                                   [netuid, hotkey_ss58])])
        for entry in commits or []:
            stored = entry[0]
            stored = bytes.fromhex(stored.removeprefix("0x")) if isinstance(stored, str) else bytes(stored)
            if stored == digest:
                return int(entry[2]), int(entry[3])
        raise ChainError(f"no hash commit 0x{digest.hex()} of {hotkey_ss58} on netuid {netuid} at block {block}")

    def reveal_weights(self, netuid: int, uids: list[int], weights: list[int], salt: list[int], version_key: int,
                       hotkey) -> Submission:
        """Open a hash commit (`reveal_weights`); the chain then sets the row as set_weights would."""
        call = self.compose_call(needs.MODULE, "reveal_weights", {
            "netuid": netuid, "uids": list(uids), "values": list(weights), "salt": list(salt),
            "version_key": version_key})
        return self.submit(call, hotkey)

    def stored_weights(self, netuid: int, uid: int, block: int | None = None, mechid: int = 0) -> list[tuple[int, int]]:
        """The row the chain holds for validator `uid` at `block` (head when None)."""
        pinned = self.pin(block) if block is not None else self.head_pin()
        (row,) = self.storage_values(pinned, [(needs.WEIGHTS, [mechid * GLOBAL_MAX_SUBNET_COUNT + netuid, uid])])
        return [tuple(p) for p in row or []]

    def serve_axon(self, netuid: int, ip: str, port: int, hotkey, protocol: int = AXON_PROTOCOL,
                   version: int = AXON_VERSION) -> Submission:
        """Publish the hotkey's axon (IPv4 or IPv6) with `serve_axon`, placeholders 0."""
        address = ipaddress.ip_address(ip)
        call = self.compose_call(needs.MODULE, "serve_axon", {
            "netuid": netuid, "version": version, "ip": int(address), "port": port, "ip_type": address.version,
            "protocol": protocol, "placeholder1": 0, "placeholder2": 0})
        return self.submit(call, hotkey)


def sign_extrinsic(codec: RuntimeCodec, call: bytes, keypair, *, nonce: int, head: int, genesis_hash: str,
                   era_block_hash: str, metadata_hash: bool = False) -> tuple[bytes, str]:
    """The signed extrinsic for `call` (bytes, 0x-hash), built by the runtime's codec from every signed
    extension the runtime declares (bittensor-core frames each, data-carrying ones included), mortal for
    ERA_PERIOD_BLOCKS from block `head` (whose era birth block has hash `era_block_hash`).

    metadata_hash: sign `CheckMetadataHash` in mode Enabled with the RFC-0078 digest of the runtime's
    metadata (for runtimes built to verify it); the default, mode Disabled, is what the SDK sends for key
    signers and what every runtime accepts. Nothing here logs or returns key material.
    """
    import bittensor_core

    era = {"period": ERA_PERIOD_BLOCKS, "current": head}
    digest = None
    if metadata_hash:
        if "CheckMetadataHash" not in codec.signed_extensions():
            raise ChainError(f"runtime spec {codec.spec_version} declares no CheckMetadataHash extension")
        digest = bytes(bittensor_core.metadata_digest(codec.metadata, codec.spec_version, codec.spec_name))
    try:
        payload = bytes(codec.core.signature_payload(
            call, era=era, nonce=nonce, tip=0, tip_asset_id=None, genesis_hash=bytes.fromhex(genesis_hash[2:]),
            era_block_hash=bytes.fromhex(era_block_hash[2:]), metadata_hash=digest))
        signature = keypair.sign(payload)
        data, extrinsic_hash = codec.core.encode_signed_extrinsic(
            call, public_key=bytes(keypair.public_key), signature=bytes(signature),
            signature_version=int(getattr(keypair, "crypto_type", 1)), era=era, nonce=nonce, tip=0,
            tip_asset_id=None, metadata_hash_enabled=digest is not None)
    except Exception as e:
        # bittensor-core builds every extension the runtime declares; one it cannot is named here
        raise ChainError(f"runtime spec {codec.spec_version}: cannot build a signed extrinsic with the declared "
                         f"signed extensions ({', '.join(codec.signed_extensions())}): {type(e).__name__}: {e}") \
            from None
    return bytes(data), "0x" + bytes(extrinsic_hash).hex()


def commit_hash(public_key: bytes, netuid_index: int, uids: list[int], weights: list[int], salt: list[int],
                version_key: int) -> bytes:
    """BlakeTwo256 of SCALE (AccountId, NetUidStorageIndex u16, Vec<u16> uids, Vec<u16> values, Vec<u16> salt,
    u64 version_key): the hash a commit_weights call carries (subtensor `get_commit_hash`)."""
    def vec_u16(values):
        n = len(values)
        prefix = bytes([n << 2]) if n < 64 else ((n << 2) | 1).to_bytes(2, "little") if n < 1 << 14 \
            else ((n << 2) | 2).to_bytes(4, "little")
        return prefix + b"".join(int(v).to_bytes(2, "little") for v in values)

    encoded = (bytes(public_key) + int(netuid_index).to_bytes(2, "little") + vec_u16(uids) + vec_u16(weights)
               + vec_u16(salt) + int(version_key).to_bytes(8, "little"))
    return _blake2_256(encoded)
