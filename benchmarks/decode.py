"""Decode the recorded 1024-uid mainnet payloads (spec 343, netuid 1, block 6852690) three ways.

pure   : scalecodec 1.2.12 via substrate-interface's runtime config and our hand-written registry
fast   : tasks.chain.scale (closures compiled from the same registry) — what snapshots use
bt     : bt-decode 0.8.0's built-in NeuronInfoLite.decode_vec (+ ss58 encoding of its raw keys)

Prints the median time of each, the pure/fast ratio, and the number of mismatching values
(every leaf of the decoded trees compared). Also the end-to-end replay snapshot time of the neurons.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decode.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import bt_decode
from scalecodec.base import ScaleBytes

from tasks.chain import open_chain, scale

RECORDING = Path("/work/shared/chain/recordings/mainnet-spec343/metagraph.json")
NIL, MG = "NeuronInfoRuntimeApi_get_neurons_lite", "SubnetInfoRuntimeApi_get_selective_mechagraph"
TYPES = {NIL: "Vec<SubtensorNeuronInfoLite>", MG: "Option<SubtensorSelectiveMetagraph>"}


def timed(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def leaves(value, path=""):
    """Flatten a decoded tree into (path, leaf) pairs."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def mismatches(a, b) -> tuple[int, int]:
    la, lb = dict(leaves(a)), dict(leaves(b))
    keys = la.keys() | lb.keys()
    return sum(la.get(k, object()) != lb.get(k, object()) for k in keys), len(keys)


def bt_neurons_lite(data: bytes) -> list[dict]:
    """bt-decode's struct decoder, reshaped to our field names and ss58 strings."""
    out = []
    for n in bt_decode.NeuronInfoLite.decode_vec(data):
        out.append({
            "hotkey": scale.account(bytes(n.hotkey)), "coldkey": scale.account(bytes(n.coldkey)), "uid": n.uid,
            "netuid": n.netuid, "active": n.active,
            "axon_info": {f: getattr(n.axon_info, f) for f in ("block", "version", "ip", "port", "ip_type",
                                                                "protocol", "placeholder1", "placeholder2")},
            "prometheus_info": {f: getattr(n.prometheus_info, f) for f in ("block", "version", "ip", "port",
                                                                            "ip_type")},
            "stake": [(scale.account(bytes(k)), v) for k, v in n.stake], "rank": n.rank, "emission": n.emission,
            "incentive": n.incentive, "consensus": n.consensus, "trust": n.trust,
            "validator_trust": n.validator_trust, "dividends": n.dividends, "last_update": n.last_update,
            "validator_permit": n.validator_permit, "pruning_score": n.pruning_score})
    return out


def main() -> int:
    recording = json.loads(RECORDING.read_text())
    payloads = {json.loads(k)[0]: bytes.fromhex(v["result"][2:]) for k, v in recording["state_call"].items()}
    chain = open_chain(f"replay:{RECORDING}")
    start = time.perf_counter()
    chain.snapshot(1, 6852690, parts=("neurons",))
    first_snapshot_s = time.perf_counter() - start
    snapshot_s, snap = timed(lambda: chain.snapshot(1, 6852690, parts=("neurons",)), 5)
    runtime_config = chain.substrate.runtime_config

    def pure(method):
        obj = runtime_config.create_scale_object(TYPES[method], ScaleBytes(payloads[method]))
        obj.decode(check_remaining=True)
        return obj.value

    total_bad = 0
    sums = {"pure": 0.0, "fast": 0.0}
    for method in (NIL, MG):
        size_kib = len(payloads[method]) / 1024
        pure_s, pure_value = timed(lambda m=method: pure(m), 3)
        # cold ss58 cache in every run, so the figure is one snapshot's decode, not a warm loop
        fast_s, fast_value = timed(lambda m=method: (scale._ss58_cache.clear(), scale.decode(TYPES[m], payloads[m]))[1],
                                   20)
        bad, count = mismatches(pure_value, fast_value)
        total_bad += bad
        sums["pure"] += pure_s
        sums["fast"] += fast_s
        print(f"{method} ({size_kib:.0f} KiB): pure scalecodec {pure_s * 1e3:8.1f} ms | fast {fast_s * 1e3:6.1f} ms"
              f" | ratio {pure_s / fast_s:5.1f}x | mismatches {bad} of {count} values")
        if method == NIL:
            bt_s, bt_value = timed(lambda m=method: (scale._ss58_cache.clear(), bt_neurons_lite(payloads[m]))[1], 20)
            bad, count = mismatches(pure_value, bt_value)
            total_bad += bad
            print(f"{'':>38}bt-decode+ss58 {bt_s * 1e3:6.1f} ms | ratio {pure_s / bt_s:5.1f}x"
                  f" | mismatches {bad} of {count} values")
    print(f"both payloads: pure {sums['pure'] * 1e3:.0f} ms, fast {sums['fast'] * 1e3:.1f} ms, "
          f"ratio {sums['pure'] / sums['fast']:.1f}x, mismatches {total_bad}")
    print(f"replay snapshot of neurons ({snap.neurons.height} uids): first {first_snapshot_s:.2f} s "
          f"(includes decoding V14 metadata once), then median {snapshot_s * 1e3:.0f} ms")
    chain.close()
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
