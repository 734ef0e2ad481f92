"""One runtime's own description of itself, and the chain's codec that reads it (DESIGN.md §6).

Everything a Subtensor node answers is decoded with the types that the runtime which produced it
declares in its metadata (V15: runtime APIs, storage, calls, signed extensions), through the chain's
own codec, bittensor-core (`bittensor_core.Runtime`, built from the subtensor monorepo against the
runtime's crates). Nothing is keyed by spec version: a runtime shipped next week is read the same
way, field by field **by name**.

What yumaflow needs from a runtime's answers is written once, as `Needs`: the fields it takes from
each runtime-API answer or storage item, and the shape it expects each to have (`int`, `bool`,
`account`, a list of them...). `RuntimeCodec.check(needs)` compares them with the metadata's type
registry before anything is decoded, so a field that a new runtime removed or retyped is one clear
`RuntimeMismatch` naming the field, the API and the spec, never a misread value; a field a runtime
added is ignored. The same comparison is what `yumaflow doctor` prints.

Runtime APIs of runtimes before spec 233 answer opaque `Vec<u8>` whose inner type the metadata does
not describe; those (spec 208/218 history) are decoded with the frozen hand layouts of
`tasks/chain/legacy.py`, the only hand-written layouts left.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import cached_property

import bittensor_core

from tasks.chain.errors import ChainDecodeError, RuntimeMismatch

SS58_FORMAT = 42
METADATA_MAGIC = b"meta"
V15_REQUEST = "0x0f000000"  # Metadata_metadata_at_version(15), SCALE u32


def strip_option_opaque_metadata(data: bytes) -> bytes | None:
    """The `MetadataVersioned` blob inside `Option<OpaqueMetadata>` (the answer of
    Metadata_metadata_at_version), or None when the runtime has no metadata of that version."""
    if not data or data[0] == 0:
        return None
    body = data[1:]
    mode = body[0] & 3
    if mode == 0:
        length, offset = body[0] >> 2, 1
    elif mode == 1:
        length, offset = int.from_bytes(body[:2], "little") >> 2, 2
    elif mode == 2:
        length, offset = int.from_bytes(body[:4], "little") >> 2, 4
    else:
        n = (body[0] >> 2) + 4
        length, offset = int.from_bytes(body[1:1 + n], "little"), 1 + n
    blob = body[offset:offset + length]
    if len(blob) != length or blob[:4] != METADATA_MAGIC:
        raise ValueError("Metadata_metadata_at_version answer is not an Option<OpaqueMetadata> of a "
                         "`meta` blob")
    return blob


# -- shapes -------------------------------------------------------------------------------------
#
# A shape is what yumaflow does with a value, not its exact SCALE type: an `int` may be u16 or
# Compact<u64>; an `account` is a 32-byte AccountId (decoded to ss58). Containers are written as
# tuples: ("list", inner), ("option", inner), ("tuple", a, b, ...). "any" accepts whatever is there.

INT, BOOL, ACCOUNT, BYTES, ANY, STRUCT, ENUM = "int", "bool", "account", "bytes", "any", "struct", "enum"


def shape_text(shape) -> str:
    if isinstance(shape, dict):
        return "struct"
    if isinstance(shape, tuple):
        return f"{shape[0]}<{', '.join(shape_text(s) for s in shape[1:])}>"
    return shape


@dataclass(frozen=True)
class Needs:
    """The fields yumaflow takes from one runtime-API answer (`api`, `method`) or storage item.

    fields: name -> expected shape. `optional`: fields read when present (a runtime without them gives
    None). `wrapped`: the answer is `Option<struct>` (None: no such subnet).
    """

    kind: str  # "api" or "storage"
    pallet_or_api: str
    name: str
    fields: dict
    optional: frozenset = frozenset()

    @property
    def label(self) -> str:
        return f"{self.pallet_or_api}.{self.name}" if self.kind == "storage" else f"{self.pallet_or_api}_{self.name}"


class RuntimeCodec:
    """One runtime: its metadata (V15, or V14 for runtimes too old to serve V15), parsed once by
    bittensor-core, and the by-name checks and decoders yumaflow uses on it."""

    def __init__(self, metadata: bytes, spec_version: int, transaction_version: int, spec_name: str = ""):
        if metadata[:4] != METADATA_MAGIC:
            raise ValueError(f"runtime {spec_version}: metadata bytes do not start with the 'meta' magic")
        self.metadata = bytes(metadata)
        self.spec_version, self.transaction_version, self.spec_name = spec_version, transaction_version, spec_name
        self.core = bittensor_core.Runtime(self.metadata, spec_version, transaction_version, SS58_FORMAT)
        self._checked: set[str] = set()
        self._lock = threading.Lock()

    @property
    def is_v15(self) -> bool:
        return bool(self.core.is_v15)

    @cached_property
    def digest(self) -> str:
        """sha256 of the metadata: identifies the runtime description in logs and caches."""
        return hashlib.sha256(self.metadata).hexdigest()

    # -- the type registry ------------------------------------------------------------------------

    @cached_property
    def _types(self) -> dict[int, dict]:
        return {t["id"]: t["type"] for t in json.loads(self.core.registry_json())["types"]}

    def _type(self, type_ref) -> dict:
        type_id = int(str(type_ref).removeprefix("scale_info::"))
        return self._types[type_id]

    def shape_of(self, type_ref, depth: int = 0):
        """The shape (see above) of a registry type: ints, bools, accounts, lists, options, tuples,
        structs as {field: shape}."""
        t = self._type(type_ref)
        d = t["def"]
        path = t.get("path") or []
        if "primitive" in d:
            p = d["primitive"]
            return BOOL if p == "bool" else INT if p[0] in "ui" else p
        if "compact" in d:
            return INT
        if "sequence" in d:
            inner = self.shape_of(d["sequence"]["type"], depth + 1)
            return BYTES if inner == INT and self._type(d["sequence"]["type"])["def"].get("primitive") == "u8" \
                else ("list", inner)
        if "array" in d:
            if d["array"]["len"] == 32 and self._type(d["array"]["type"])["def"].get("primitive") == "u8":
                return ACCOUNT
            return ("list", self.shape_of(d["array"]["type"], depth + 1))
        if "tuple" in d:
            return ("tuple", *(self.shape_of(x, depth + 1) for x in d["tuple"]))
        if path and path[-1] in ("AccountId32",):
            return ACCOUNT
        if "composite" in d:
            fields = d["composite"]["fields"]
            if len(fields) == 1 and not fields[0].get("name"):  # a newtype (NetUid, AlphaCurrency, ...)
                return self.shape_of(fields[0]["type"], depth + 1)
            if depth > 6:
                return STRUCT
            return {f.get("name") or str(i): self.shape_of(f["type"], depth + 1) for i, f in enumerate(fields)}
        if "variant" in d:
            variants = d["variant"]["variants"]
            if path == ["Option"]:
                return ("option", self.shape_of(variants[1]["fields"][0]["type"], depth + 1))
            return ENUM
        return ANY

    # -- runtime APIs -----------------------------------------------------------------------------

    @cached_property
    def runtime_apis(self) -> dict[str, dict[str, dict]]:
        """{api: {method: {inputs, output}}} as the metadata declares (empty for V14 metadata)."""
        return self.core.runtime_api_map() if self.is_v15 else {}

    def api(self, api: str, method: str) -> dict | None:
        return self.runtime_apis.get(api, {}).get(method)

    def api_is_opaque(self, api: str, method: str) -> bool:
        """True where the runtime answers `Vec<u8>` around a value it does not describe (spec < 233)."""
        declared = self.api(api, method)
        return declared is not None and self.core.type_name_of(int(declared["output"].split("::")[1])) == "Vec<u8>"

    def encode_api_params(self, api: str, method: str, **params) -> str:
        """The hex of a runtime-API call's parameters, each encoded with its declared type, by name."""
        declared = self.api(api, method)
        if declared is None:
            raise RuntimeMismatch(f"{api}_{method}", self.spec_version, "the runtime has no such API method")
        names = [name for name, _ in declared["inputs"]]
        if sorted(names) != sorted(params):
            raise RuntimeMismatch(f"{api}_{method}", self.spec_version,
                                  f"takes parameters ({', '.join(names)}); yumaflow sends ({', '.join(params)})")
        return "".join(self.core.encode(type_ref, params[name]).hex() for name, type_ref in declared["inputs"])

    def decode_api(self, api: str, method: str, data: bytes, block):
        declared = self.api(api, method)
        try:
            return self.core.decode(declared["output"], data, True)
        except Exception as e:
            raise ChainDecodeError(f"{api}_{method}", block, f"{len(data)} bytes do not decode as the output type "
                                                            f"that runtime spec {self.spec_version} declares: {e}") \
                from None

    # -- storage ----------------------------------------------------------------------------------

    def storage(self, pallet: str, name: str):
        """bittensor-core's StorageEntry, or None when this runtime has no such storage item."""
        try:
            return self.core.storage_entry(pallet, name)
        except KeyError:
            return None

    def storage_key(self, pallet: str, name: str, params: list) -> str:
        return "0x" + bytes(self.core.storage_key(pallet, name, list(params))).hex()

    def decode_storage(self, entry, raw_hex: str | None, block):
        """A storage value as the chain reads it: the stored bytes, or the item's declared default
        (an Optional item with no entry is None)."""
        try:
            if raw_hex is not None:
                return self.core.decode(entry.value_type, bytes.fromhex(raw_hex.removeprefix("0x")), True)
            if entry.modifier == "Optional":
                return None
            return self.core.decode(entry.value_type, bytes(entry.default_bytes), True)
        except Exception as e:
            raise ChainDecodeError(f"{entry.pallet}.{entry.name}", block,
                                   f"the stored bytes do not decode as the value type runtime spec "
                                   f"{self.spec_version} declares: {e}") from None

    # -- calls and extrinsics ---------------------------------------------------------------------

    @cached_property
    def calls(self) -> dict[tuple[str, str], list[str]]:
        """{(pallet, call): [argument names]} of every call this runtime accepts."""
        return {(p["name"], c["name"]): [a["name"] for a in c["args"]]
                for p in self.core.metadata_ir()["pallets"] for c in p["calls"]}

    def has_call(self, pallet: str, call: str) -> bool:
        return (pallet, call) in self.calls

    def compose_call(self, pallet: str, call: str, args: dict) -> bytes:
        declared = self.calls.get((pallet, call))
        if declared is None:
            raise RuntimeMismatch(f"{pallet}.{call}", self.spec_version, "the runtime has no such call")
        if sorted(declared) != sorted(args):
            raise RuntimeMismatch(f"{pallet}.{call}", self.spec_version,
                                  f"takes ({', '.join(declared)}); yumaflow sends ({', '.join(args)})")
        return bytes(self.core.compose_call(pallet, call, args))

    def signed_extensions(self) -> list[str]:
        return list(self.core.signed_extension_identifiers())

    def module_error(self, pallet_index: int, error_index: int) -> str:
        """'Pallet.ErrorName' of a dispatch module error."""
        pallet = next((p["name"] for p in self.core.metadata_ir()["pallets"] if p["index"] == pallet_index),
                      f"pallet{pallet_index}")
        try:
            name, _docs = self.core.module_error(pallet_index, error_index)
        except Exception:
            name = f"error{error_index}"
        return f"{pallet}.{name}"

    def constant(self, pallet: str, name: str):
        return self.core.constant(pallet, name)

    # -- by-name checks ---------------------------------------------------------------------------

    def declared_shape(self, needs: Needs):
        """The shape the runtime declares for `needs` (None when the API or storage item is absent).
        Option<...> around an API answer is unwrapped."""
        if needs.kind == "api":
            if self.api_is_opaque(needs.pallet_or_api, needs.name):
                return None
            declared = self.api(needs.pallet_or_api, needs.name)
            ref = declared and declared["output"]
        else:
            entry = self.storage(needs.pallet_or_api, needs.name)
            ref = entry and entry.value_type
        if ref is None:
            return None
        shape = self.shape_of(ref)
        while isinstance(shape, tuple) and shape[0] in ("option", "list") and not isinstance(shape[1], str):
            shape = shape[1]
        return shape

    def compare(self, needs: Needs) -> list[tuple[str, str, str, str]]:
        """(field, expected, declared, verdict) per needed field; verdict is ok, missing, retyped or
        absent (an optional field this runtime does not have)."""
        declared = self.declared_shape(needs)
        rows = []
        for name, expected in needs.fields.items():
            if name == "":  # the whole value of a storage item
                got = declared
            else:
                got = declared.get(name) if isinstance(declared, dict) else None
            if got is None:
                verdict = "absent" if name in needs.optional else "missing"
            else:
                verdict = "ok" if shape_fits(expected, got) else "retyped"
            rows.append((name, shape_text(expected), "-" if got is None else shape_text(got), verdict))
        return rows

    def check(self, needs: Needs) -> None:
        """Raise RuntimeMismatch naming the field, the API and the spec when a needed field is missing
        or has another shape; checked once per runtime and Needs."""
        if needs.label in self._checked:
            return
        if self.declared_shape(needs) is None:
            raise RuntimeMismatch(needs.label, self.spec_version, f"the runtime has no {needs.kind} {needs.label}")
        bad = [row for row in self.compare(needs) if row[3] in ("missing", "retyped")]
        if bad:
            what = "; ".join(f"field {f!r} {v} (yumaflow needs {e}, the runtime declares {d})" for f, e, d, v in bad)
            raise RuntimeMismatch(needs.label, self.spec_version, what)
        with self._lock:
            self._checked.add(needs.label)


def shape_fits(expected, declared) -> bool:
    """Whether a declared shape gives what yumaflow expects (`any` accepts everything; an expected
    struct is satisfied by a declared struct holding at least its fields)."""
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return isinstance(declared, dict) and all(k in declared and shape_fits(v, declared[k])
                                                  for k, v in expected.items())
    if isinstance(expected, tuple):
        return (isinstance(declared, tuple) and declared[0] == expected[0] and len(declared) == len(expected)
                and all(shape_fits(e, d) for e, d in zip(expected[1:], declared[1:], strict=True)))
    if expected == STRUCT:
        return isinstance(declared, dict) or declared == STRUCT
    return expected == declared


def take(record: dict, needs: Needs, codec: RuntimeCodec) -> dict:
    """The needed fields of a decoded record, by name (absent optional fields as None)."""
    codec.check(needs)
    return {name: record.get(name) for name in needs.fields}


_CODECS: dict[str, RuntimeCodec] = {}
_CODECS_LOCK = threading.Lock()


def codec_for(metadata: bytes, spec_version: int, transaction_version: int, spec_name: str = "") -> RuntimeCodec:
    """A RuntimeCodec, shared in this process by every client that sees the same metadata bytes."""
    key = hashlib.sha256(metadata).hexdigest() + f":{spec_version}:{transaction_version}"
    with _CODECS_LOCK:
        codec = _CODECS.get(key)
        if codec is None:
            codec = _CODECS[key] = RuntimeCodec(metadata, spec_version, transaction_version, spec_name)
        return codec
