"""A small SCALE decoder for the frozen hand layouts of tasks/chain/legacy.py (opaque pre-233 answers).

scalecodec builds a Python object per value; a 1024-uid metagraph takes it 1–3 s (chain_interface.md
§7). Here each type string is compiled once into a closure `(buf, pos) -> (value, pos)`, vectors of
compacts decode in one tight loop, and AccountIds are ss58-encoded once each (cached). Values equal
scalecodec's, field for field (benchmarks/decode.py counts mismatches).
"""

from __future__ import annotations

import struct
from functools import cache

from scalecodec.utils.ss58 import ss58_encode

from tasks.chain.legacy import TYPE_REGISTRY


class Truncated(ValueError):
    """Ran past the end of the bytes, or met an invalid tag; the message says where and what."""


_FIXED = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "i8": 1, "i16": 2, "i32": 4, "i64": 8, "i128": 16}
_ss58_cache: dict[bytes, str] = {}


def account(raw: bytes, ss58_format: int = 42) -> str:
    """ss58 address (format 42) of a 32-byte public key, cached: hotkeys repeat across calls."""
    address = _ss58_cache.get(raw)
    if address is None:
        address = _ss58_cache[raw] = ss58_encode(raw, ss58_format)
    return address


def _need(buf, pos, n, what):
    if pos + n > len(buf):
        raise Truncated(f"{what} needs {n} byte(s) at offset {pos}, only {len(buf) - pos} left")


def _compact(buf, pos):
    if pos >= len(buf):
        raise Truncated(f"Compact needs a byte at offset {pos}, none left")
    b = buf[pos]
    mode = b & 3
    if mode == 0:
        return b >> 2, pos + 1
    if mode == 1:
        _need(buf, pos, 2, "Compact")
        return (b | buf[pos + 1] << 8) >> 2, pos + 2
    if mode == 2:
        _need(buf, pos, 4, "Compact")
        return int.from_bytes(buf[pos:pos + 4], "little") >> 2, pos + 4
    n = (b >> 2) + 4
    _need(buf, pos + 1, n, "Compact")
    return int.from_bytes(buf[pos + 1:pos + 1 + n], "little"), pos + 1 + n


def _split_args(inner: str) -> list[str]:
    """'A, Vec<(B, C)>' -> ['A', 'Vec<(B, C)>'] (split on top-level commas)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return [p for p in parts if p]


@cache
def compile_type(type_string: str):
    """A decoder `(buf, pos) -> (value, pos)` for a type string of TYPE_REGISTRY's vocabulary."""
    t = type_string.strip()
    if t in _FIXED:
        n, signed = _FIXED[t], t[0] == "i"

        def fixed(buf, pos, n=n, signed=signed, t=t):
            _need(buf, pos, n, t)
            return int.from_bytes(buf[pos:pos + n], "little", signed=signed), pos + n
        return fixed
    if t == "bool":
        def boolean(buf, pos):
            _need(buf, pos, 1, "bool")
            b = buf[pos]
            if b > 1:
                raise Truncated(f"bool byte {b} at offset {pos} is neither 0 nor 1")
            return b == 1, pos + 1
        return boolean
    if t in ("AccountId", "AccountId32", "[u8; 32]"):
        def account_id(buf, pos):
            _need(buf, pos, 32, "AccountId")
            return account(bytes(buf[pos:pos + 32])), pos + 32
        return account_id
    if t == "Bytes":
        def text_or_hex(buf, pos):
            # as scalecodec's Bytes: UTF-8 text when it decodes, else 0x-hex
            n, pos = _compact(buf, pos)
            _need(buf, pos, n, "Bytes")
            raw = bytes(buf[pos:pos + n])
            try:
                return raw.decode(), pos + n
            except UnicodeDecodeError:
                return "0x" + raw.hex(), pos + n
        return text_or_hex
    if t == "Vec<u8>":
        def byte_vec(buf, pos):
            n, pos = _compact(buf, pos)
            _need(buf, pos, n, "Vec<u8>")
            return bytes(buf[pos:pos + n]), pos + n
        return byte_vec
    if t.startswith("Compact<"):
        return _compact
    if t.startswith("Vec<") and t.endswith(">"):
        inner = t[4:-1].strip()
        if inner.startswith("Compact<"):
            def compact_vec(buf, pos):
                n, pos = _compact(buf, pos)
                out = [0] * n
                for i in range(n):
                    out[i], pos = _compact(buf, pos)
                return out, pos
            return compact_vec
        if inner == "bool":
            def bool_vec(buf, pos):
                n, pos = _compact(buf, pos)
                _need(buf, pos, n, "Vec<bool>")
                raw = buf[pos:pos + n]
                if any(b > 1 for b in raw):
                    raise Truncated(f"Vec<bool> at offset {pos} holds a byte that is neither 0 nor 1")
                return [b == 1 for b in raw], pos + n
            return bool_vec
        if inner.replace(" ", "") == "(u16,u16)":
            def u16_pairs(buf, pos):
                n, pos = _compact(buf, pos)
                _need(buf, pos, 4 * n, "Vec<(u16, u16)>")
                flat = struct.unpack_from(f"<{2 * n}H", buf, pos)
                return list(zip(flat[0::2], flat[1::2], strict=True)), pos + 4 * n
            return u16_pairs
        item = compile_type(inner)

        def vec(buf, pos, item=item):
            n, pos = _compact(buf, pos)
            if n > len(buf) - pos:  # every element takes at least one byte
                raise Truncated(f"Vec of {n} items at offset {pos} but only {len(buf) - pos} bytes left")
            out = [None] * n
            for i in range(n):
                out[i], pos = item(buf, pos)
            return out, pos
        return vec
    if t.startswith("Option<") and t.endswith(">"):
        item = compile_type(t[7:-1])

        def option(buf, pos, item=item):
            _need(buf, pos, 1, "Option tag")
            tag = buf[pos]
            if tag == 0:
                return None, pos + 1
            if tag != 1:
                raise Truncated(f"Option tag {tag} at offset {pos} is neither 0 nor 1")
            return item(buf, pos + 1)
        return option
    if t.startswith("(") and t.endswith(")"):
        items = [compile_type(a) for a in _split_args(t[1:-1])]

        def tup(buf, pos, items=items):
            out = []
            for it in items:
                v, pos = it(buf, pos)
                out.append(v)
            return tuple(out), pos
        return tup
    definition = TYPE_REGISTRY["types"].get(t)
    if isinstance(definition, dict) and definition["type"] == "struct":
        names = [n for n, _ in definition["type_mapping"]]
        decoders = [compile_type(ft) for _, ft in definition["type_mapping"]]

        def struct_(buf, pos, names=names, decoders=decoders):
            out = {}
            for name, dec in zip(names, decoders, strict=True):
                out[name], pos = dec(buf, pos)
            return out, pos
        return struct_
    if isinstance(definition, dict) and definition["type"] == "enum":
        variants = [(n, compile_type(vt) if vt != "Null" else None) for n, vt in definition["type_mapping"]]

        def enum(buf, pos, variants=variants, t=t):
            _need(buf, pos, 1, f"{t} variant")
            index = buf[pos]
            if index >= len(variants):
                raise Truncated(f"{t} variant index {index} at offset {pos} (only {len(variants)} variants)")
            name, dec = variants[index]
            if dec is None:
                return name, pos + 1
            value, pos = dec(buf, pos + 1)
            return {name: value}, pos
        return enum
    raise KeyError(f"type {type_string!r} is not in the Subtensor registry nor a SCALE primitive")


def decode(type_string: str, data: bytes, *, wrapped: bool = False):
    """Decode all of `data` as `type_string` (strict: no trailing bytes); Truncated on bad bytes.

    wrapped: the value sits inside a SCALE `Vec<u8>` (runtime APIs before spec 233); an empty one
    decodes to None.
    """
    buf = memoryview(data)
    pos = 0
    if wrapped:
        n, pos = _compact(buf, 0)
        if pos + n != len(buf):
            raise Truncated(f"Vec<u8> wrapper says {n} bytes, {len(buf) - pos} follow")
        if n == 0:
            return None  # such APIs answered "no such subnet" with an empty Vec
    value, end = compile_type(type_string)(buf, pos)
    if end != len(buf):
        raise Truncated(f"{len(buf) - end} byte(s) left over after {type_string} (decoded {end} of {len(buf)})")
    return value
