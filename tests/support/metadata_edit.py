"""Edit one struct of a real V15 metadata blob: the runtime of next week, built from the one we have.

A V15 `MetadataVersioned` blob is `meta`, the version byte 15, then the portable type registry
(Vec<PortableType>) and everything else. This parses the registry just far enough to find each type's
bytes, re-encodes the one composite type being edited (fields added, removed or retyped), and splices
it back; every other byte is the runtime's own. scale-info's layout (TypeDef variants 0..7):
composite, variant, sequence, array, tuple, primitive, compact, bitsequence.
"""

from __future__ import annotations

from dataclasses import dataclass


def _compact(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    mode = b & 3
    if mode == 0:
        return b >> 2, pos + 1
    if mode == 1:
        return int.from_bytes(buf[pos:pos + 2], "little") >> 2, pos + 2
    if mode == 2:
        return int.from_bytes(buf[pos:pos + 4], "little") >> 2, pos + 4
    n = (b >> 2) + 4
    return int.from_bytes(buf[pos + 1:pos + 1 + n], "little"), pos + 1 + n


def encode_compact(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30:
        return ((n << 2) | 2).to_bytes(4, "little")
    raw = n.to_bytes((n.bit_length() + 7) // 8, "little")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw


def _text(buf, pos):
    n, pos = _compact(buf, pos)
    return buf[pos:pos + n].decode(), pos + n


def _texts(buf, pos):
    n, pos = _compact(buf, pos)
    out = []
    for _ in range(n):
        t, pos = _text(buf, pos)
        out.append(t)
    return out, pos


def _option_text(buf, pos):
    if buf[pos] == 0:
        return None, pos + 1
    return _text(buf, pos + 1)


@dataclass
class Field:
    name: str | None
    type_id: int
    type_name: str | None
    docs: list[str]

    def encode(self) -> bytes:
        def opt(t):
            return b"\x00" if t is None else b"\x01" + _enc_text(t)
        return opt(self.name) + encode_compact(self.type_id) + opt(self.type_name) + _enc_texts(self.docs)


def _enc_text(t: str) -> bytes:
    raw = t.encode()
    return encode_compact(len(raw)) + raw


def _enc_texts(ts: list[str]) -> bytes:
    return encode_compact(len(ts)) + b"".join(_enc_text(t) for t in ts)


def _fields(buf, pos):
    n, pos = _compact(buf, pos)
    out = []
    for _ in range(n):
        name, pos = _option_text(buf, pos)
        type_id, pos = _compact(buf, pos)
        type_name, pos = _option_text(buf, pos)
        docs, pos = _texts(buf, pos)
        out.append(Field(name, type_id, type_name, docs))
    return out, pos


def _skip_def(buf, pos):
    kind = buf[pos]
    pos += 1
    if kind == 0:
        return _fields(buf, pos)[1]
    if kind == 1:
        n, pos = _compact(buf, pos)
        for _ in range(n):
            _, pos = _text(buf, pos)
            _, pos = _fields(buf, pos)
            pos += 1  # index u8
            _, pos = _texts(buf, pos)
        return pos
    if kind in (2, 6):
        return _compact(buf, pos)[1]
    if kind == 3:
        return _compact(buf, pos + 4)[1]
    if kind == 4:
        n, pos = _compact(buf, pos)
        for _ in range(n):
            _, pos = _compact(buf, pos)
        return pos
    if kind == 5:
        return pos + 1
    if kind == 7:
        return _compact(buf, _compact(buf, pos)[1])[1]
    raise ValueError(f"unknown TypeDef variant {kind} at offset {pos - 1}")


@dataclass
class TypeEntry:
    type_id: int
    start: int  # offset of the PortableType (its id)
    def_start: int  # offset of its TypeDef
    end: int


def registry_entries(metadata: bytes) -> dict[int, TypeEntry]:
    if metadata[:4] != b"meta" or metadata[4] != 15:
        raise ValueError("expected a V15 MetadataVersioned blob")
    count, pos = _compact(metadata, 5)
    entries = {}
    for _ in range(count):
        start = pos
        type_id, pos = _compact(metadata, pos)
        _, pos = _texts(metadata, pos)  # path
        n, pos = _compact(metadata, pos)  # params
        for _ in range(n):
            _, pos = _text(metadata, pos)
            pos = pos + 1 if metadata[pos] == 0 else _compact(metadata, pos + 1)[1]
        def_start = pos
        pos = _skip_def(metadata, pos)
        _, pos = _texts(metadata, pos)  # docs
        entries[type_id] = TypeEntry(type_id, start, def_start, pos)
    return entries


def composite_fields(metadata: bytes, type_id: int) -> list[Field]:
    entry = registry_entries(metadata)[type_id]
    if metadata[entry.def_start] != 0:
        raise ValueError(f"type {type_id} is not a composite")
    return _fields(metadata, entry.def_start + 1)[0]


def with_composite_fields(metadata: bytes, type_id: int, fields: list[Field]) -> bytes:
    """The metadata with composite type `type_id` holding `fields` instead (everything else unchanged)."""
    entry = registry_entries(metadata)[type_id]
    old_fields_end = _fields(metadata, entry.def_start + 1)[1]
    new_def = b"\x00" + encode_compact(len(fields)) + b"".join(f.encode() for f in fields)
    return metadata[:entry.def_start] + new_def + metadata[old_fields_end:]
