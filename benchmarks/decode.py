"""Decode the recorded 1024-uid mainnet payloads (spec 343, netuid 1, block 6852690) from the runtime's metadata.

core : bittensor-core 0.1.5 with the output types the runtime declares in its V15 metadata (the path
       snapshots use; AccountIds come out as ss58)
bt   : bt-decode 0.8.0 with the same V15 portable registry, plus ss58 encoding of its raw keys (a second,
       independent decoder of the same types: the baseline of this run)

Prints the median time of each, the number of mismatching values (every leaf compared), the metadata
parse time, and the replay snapshot time of the neurons (first: with the metadata fetched and parsed;
then warm).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decode.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import bittensor_core
import bt_decode

from tasks.chain import open_chain
from tasks.chain.runtime import RuntimeCodec, strip_option_opaque_metadata

RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "chain" / "recordings" / "mainnet-spec343"
NIL, MG = ("NeuronInfoRuntimeApi", "get_neurons_lite"), ("SubnetInfoRuntimeApi", "get_selective_mechagraph")


def timed(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def leaves(value, path=""):
    """Flatten a decoded tree into (path, leaf) pairs; tuples and lists alike."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def as_ss58(value):
    """bt-decode's raw AccountId32 ((32 ints),) as ss58; everything else as it is."""
    if isinstance(value, dict):
        return {k: as_ss58(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) == 1 and isinstance(value[0], list | tuple) and len(value[0]) == 32 \
                and all(isinstance(x, int) for x in value[0]):
            return bittensor_core.ss58_encode(bytes(value[0]), 42)
        return [as_ss58(v) for v in value]
    return value


def align(core, bt):
    """bt-decode gives byte strings (identity texts) as lists of ints where bittensor-core gives text
    (UTF-8, else 0x-hex): bring bt-decode's to the same form, nothing else."""
    if isinstance(core, str) and isinstance(bt, list) and all(isinstance(x, int) and 0 <= x < 256 for x in bt):
        raw = bytes(bt)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return "0x" + raw.hex()
    if isinstance(core, dict) and isinstance(bt, dict):
        return {k: align(core.get(k), v) for k, v in bt.items()}
    if isinstance(core, list | tuple) and isinstance(bt, list | tuple) and len(core) == len(bt):
        return [align(c, b) for c, b in zip(core, bt, strict=True)]
    return bt


def mismatches(a, b) -> tuple[int, int]:
    la, lb = dict(leaves(a)), dict(leaves(b))
    keys = la.keys() | lb.keys()
    return sum(la.get(k, object()) != lb.get(k, object()) for k in keys), len(keys)


def main() -> int:
    recording = json.loads((RECORDINGS / "metagraph.json").read_text())
    payloads = {tuple(json.loads(k)[0].split("_", 1)): bytes.fromhex(v["result"][2:])
                for k, v in recording["state_call"].items()}
    raw = bytes.fromhex((RECORDINGS / "metadata_v15.hex").read_text().strip()[2:])
    metadata = strip_option_opaque_metadata(raw)
    parse_s, codec = timed(lambda: RuntimeCodec(metadata, 343, 1, "node-subtensor"), 5)
    v15 = bt_decode.MetadataV15.decode_from_metadata_option(raw)
    registry = bt_decode.PortableRegistry.from_metadata_v15(v15)

    total_bad = 0
    sums = {"core": 0.0, "bt": 0.0}
    for api, method in (NIL, MG):
        data = payloads[(api, method)]
        output = codec.api(api, method)["output"]
        core_s, core_value = timed(lambda a=api, m=method, d=data: codec.decode_api(a, m, d, 6852690), 20)
        bt_s, bt_value = timed(lambda o=output, d=data: as_ss58(bt_decode.decode(o, registry, d)), 5)
        bad, count = mismatches(core_value, align(core_value, bt_value))
        total_bad += bad
        sums["core"] += core_s
        sums["bt"] += bt_s
        print(f"{api}_{method} ({len(data) / 1024:.0f} KiB): bittensor-core {core_s * 1e3:6.1f} ms | "
              f"bt-decode+ss58 {bt_s * 1e3:6.1f} ms | mismatches {bad} of {count} values")
    print(f"both payloads: bittensor-core {sums['core'] * 1e3:.1f} ms, bt-decode+ss58 {sums['bt'] * 1e3:.1f} ms, "
          f"mismatches {total_bad}")
    print(f"metadata V15 of spec 343 ({len(metadata) / 1024:.0f} KiB): parsed by bittensor-core in "
          f"{parse_s * 1e3:.1f} ms")

    chain = open_chain(f"replay:{RECORDINGS / 'metagraph.json'}")
    start = time.perf_counter()
    chain.snapshot(1, 6852690, parts=("neurons",))
    first_snapshot_s = time.perf_counter() - start
    snapshot_s, snap = timed(lambda: chain.snapshot(1, 6852690, parts=("neurons",)), 5)
    print(f"replay snapshot of neurons ({snap.neurons.height} uids): first {first_snapshot_s * 1e3:.0f} ms "
          f"(metadata fetched from the recording and parsed: {chain.metadata_fetch_s[343] * 1e3:.0f} ms), then "
          f"median {snapshot_s * 1e3:.0f} ms")
    chain.close()
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
