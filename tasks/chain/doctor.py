"""`yumaflow doctor`: does this node's runtime offer everything yumaflow uses?

Reads the runtime at the node's best head (its own metadata) and checks, item by item, what yumaflow
reads and sends (tasks/chain/needs.py): runtime APIs and their fields, storage items, calls, signed
extensions; then, for a subnet, its epoch and commit-reveal settings and how a weight push would go.
One row per item: present and type compatible (ok), present but of another shape (retyped), missing,
or absent where yumaflow reads it only when present (absent: the column stays null).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.chain import legacy, needs
from tasks.chain.errors import ChainError

OK, RETYPED, MISSING, ABSENT, LEGACY = "ok", "retyped", "missing", "absent", "legacy layout"
# Items a snapshot cannot do without; the rest only fill nullable columns or serve one kind of push.
_REQUIRED_STORAGE = {"Weights", "Bonds", "Now"}


@dataclass
class Check:
    kind: str   # runtime API | storage | call | signed extension
    name: str
    status: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in (RETYPED, MISSING)


@dataclass
class Report:
    source: str
    block: int
    spec_version: int
    metadata: str  # "V15" or "V14"
    checks: list[Check] = field(default_factory=list)
    subnet: dict | None = None
    push: str | None = None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.failed]


def _api_checks(codec) -> list[Check]:
    checks = []
    for item in needs.RUNTIME_APIS:
        if codec.api(item.pallet_or_api, item.name) is None:
            status = MISSING if item is needs.NEURONS_LITE else ABSENT
            detail = "" if status == MISSING else "neurons and hyperparameters then come from storage (spec 218 path)"
            checks.append(Check("runtime API", item.label, status, detail))
            continue
        if codec.api_is_opaque(item.pallet_or_api, item.name):
            known = item.label in legacy.OPAQUE_ANSWERS
            checks.append(Check("runtime API", item.label, LEGACY if known else MISSING,
                                "answers opaque Vec<u8> (runtime before spec 233)"))
            continue
        rows = codec.compare(item)
        bad = [f"{f}: {v} (needs {e}, declares {d})" for f, e, d, v in rows if v in (MISSING, RETYPED)]
        status = RETYPED if any(r[3] == RETYPED for r in rows) else MISSING if bad else OK
        checks.append(Check("runtime API", item.label, status,
                            "; ".join(bad) or f"{len(rows)} fields by name"))
    return checks


def _storage_checks(codec) -> list[Check]:
    items = [needs.TIMESTAMP_NOW, needs.WEIGHTS, needs.BONDS,
             *needs.SUBNET_STORAGE.values()]
    checks = []
    for item in items:
        if codec.storage(item.pallet_or_api, item.name) is None:
            status = MISSING if item.name in _REQUIRED_STORAGE else ABSENT
            checks.append(Check("storage", item.label, status))
            continue
        ((_, expected, declared, verdict),) = codec.compare(item)
        checks.append(Check("storage", item.label, verdict, f"{declared}" if verdict == OK else
                            f"needs {expected}, declares {declared}"))
    return checks


def _call_checks(codec) -> list[Check]:
    checks = []
    for (pallet, call), use in needs.CALLS.items():
        present = codec.has_call(pallet, call)
        checks.append(Check("call", f"{pallet}.{call}", OK if present else ABSENT, use))
    if not any(codec.has_call(needs.MODULE, c) for c in ("set_weights", "set_mechanism_weights")):
        checks.append(Check("call", "SubtensorModule.set_(mechanism_)weights", MISSING, "no way to push weights"))
    return checks


def _extension_checks(codec, chain, pinned) -> list[Check]:
    """Every declared signed extension, and a real signing dry run: an extrinsic built with all of them
    by the runtime's codec and decoded back (nothing is sent)."""
    import bittensor_core

    from tasks.chain.substrate import sign_extrinsic

    extensions = codec.signed_extensions()
    probe = bittensor_core.Keypair.create_from_uri("//yumaflow-doctor")  # a throwaway key: signs nothing real
    try:
        call = codec.compose_call("System", "remark", {"remark": b"yumaflow doctor"})
        data, _ = sign_extrinsic(codec, call, probe, nonce=0, head=pinned.block, genesis_hash=pinned.block_hash,
                                 era_block_hash=pinned.block_hash)
        codec.core.decode_extrinsic(data, True)
        status, detail = OK, "built and decoded back by the runtime's codec"
    except Exception as e:  # any failure here is the finding
        status, detail = MISSING, f"cannot sign: {e}"
    return [Check("signed extension", name, status, detail) for name in extensions]


def diagnose(chain, netuid: int | None = None) -> Report:
    """The report for the node's runtime at its best head (and subnet `netuid`, if given)."""
    if not hasattr(chain, "head_pin"):  # the simulated subnet: no runtime, it implements the interface itself
        from tasks.simnet.chain import SIM_SPEC_VERSION

        head = chain.head_block(finalized=False)
        report = Report(source=chain.source, block=head, spec_version=SIM_SPEC_VERSION, metadata="none (simulation)",
                        checks=[Check("simulation", "ChainClient + ChainWriter", OK,
                                      "the simulated subnet answers in yumaflow's own terms; no runtime metadata")])
        if netuid is not None:
            report.subnet = chain.snapshot(netuid, head, parts=("subnets",)).subnets.row(0, named=True)
            report.push = chain.push_method(netuid)
        return report
    pinned = chain.head_pin()
    codec = pinned.codec
    report = Report(source=chain.source, block=pinned.block, spec_version=pinned.spec_version,
                    metadata="V15" if codec.is_v15 else "V14")
    report.checks = (_api_checks(codec) + _storage_checks(codec) + _call_checks(codec)
                     + _extension_checks(codec, chain, pinned))
    if netuid is not None and not report.failed:
        snap = chain.snapshot(netuid, pinned.block, parts=("subnets",))
        report.subnet = snap.subnets.row(0, named=True)
        try:
            report.push = chain.push_method(netuid)
        except ChainError as e:
            report.push = f"impossible: {e}"
            report.checks.append(Check("call", "commit-reveal", MISSING, str(e)))
    return report


SETTINGS_SHOWN = ("tempo", "epoch_consensus", "yuma3_enabled", "liquid_alpha_enabled", "liquid_alpha_consensus_mode",
                  "alpha_low", "alpha_high", "alpha_sigmoid_steepness", "bonds_reset_enabled", "mechanism_count",
                  "mechanism_emission_split", "commit_reveal_enabled", "commit_reveal_version",
                  "reveal_period_epochs", "subnet_epoch_index", "last_epoch_block", "pending_epoch_at",
                  "max_epochs_per_block", "weights_rate_limit", "min_allowed_weights", "max_weight_limit")


def recomputable(subnet: dict) -> str:
    """Whether the consensus engine can replay this subnet's epochs under the rules it has set."""
    from schemas.consensus import consensus_mode_code, epoch_consensus_code

    try:
        if epoch_consensus_code(subnet.get("epoch_consensus")) != 0:
            return "no: the Null epoch consensus is not implemented (README \"Epoch variants\")"
        mode = consensus_mode_code(subnet.get("liquid_alpha_consensus_mode"))
    except ValueError as e:
        return f"no: {e}"
    if not (subnet.get("liquid_alpha_enabled") and subnet.get("yuma3_enabled")):
        return "yes, exactly"
    reads = {0: "current", 1: "previous epoch's", 3: "larger of the current and previous"}.get(mode) or (
        "previous epoch's" if subnet.get("bonds_penalty") == 65535 else "current")  # 2: Auto
    return f"yes, exactly (liquid alpha reads the {reads} consensus)"


def render(report: Report) -> str:
    how = "the simulated subnet" if report.metadata.startswith("none") else \
        f"metadata {report.metadata}, decoded by name with bittensor-core"
    lines = [f"node        {report.source}", f"runtime     spec {report.spec_version} at block {report.block} ({how})",
             ""]
    width = max(len(c.name) for c in report.checks)
    lines.append(f"{'kind':<17} {'item':<{width}}  {'status':<13} detail")
    for c in report.checks:
        lines.append(f"{c.kind:<17} {c.name:<{width}}  {c.status:<13} {c.detail}")
    if report.subnet is not None:
        lines += ["", f"subnet {report.subnet['netuid']} at block {report.block}"]
        for name in SETTINGS_SHOWN:
            value = report.subnet.get(name)
            lines.append(f"  {name:<28} {'null (not in this runtime)' if value is None else value}")
        lines += ["", f"a weight push would: {report.push}",
                  f"its epochs recompute: {recomputable(report.subnet)}"]
    lines += ["", f"{len(report.failed)} problem(s): " + (", ".join(c.name for c in report.failed) or "none")]
    return "\n".join(lines)
