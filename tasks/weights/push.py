"""Push a weight row to the chain, or say exactly why not, and describe the attempt as a table row.

`push_weights` checks what the chain would check before it (chain_interface.md §6.2) and what a
validator must never do (issue 4): a snapshot older than a tempo, a row sent inside the weights rate
limit, an empty or all-zero row. Dry run is the default; `dry_run=False` signs and sends through the
ChainWriter (SubstrateChain or the simulated subnet). Commit-reveal subnets go through the writer's
commit path, which raises CommitRevealUnavailable when it cannot commit: never a silent fallback.

The result is one `weight_submissions` row (schemas.evaluation.WEIGHT_SUBMISSIONS).
"""

from __future__ import annotations

import logging

import polars as pl

from schemas import validate_frame
from schemas.evaluation import WEIGHT_SUBMISSIONS
from tasks.chain.interface import Snapshot
from tasks.weights.convert import U16_MAX, WeightsRefused, chain_stored_row

log = logging.getLogger(__name__)


def submission_row(netuid, block, hotkey_ss58, epoch_id, uids, weights, version_key, dry_run, projection, status, *,
         extrinsic_hash=None, included_block=None, detail=None, method=None, reveal_round=None, reveal_block=None,
         salt=None, reveal_status=None, revealed_block=None, chain_weights=None) -> pl.DataFrame:
    projection = projection or {}
    return validate_frame(pl.DataFrame([{
        "netuid": netuid, "block": block, "validator_hotkey": hotkey_ss58, "epoch_id": epoch_id,
        "uids": list(uids), "weights": list(weights), "version_key": version_key, "dry_run": dry_run,
        "projected_validator_trust": projection.get("validator_trust"),
        "projected_dividends": projection.get("dividends"),
        "status": status, "extrinsic_hash": extrinsic_hash, "included_block": included_block, "detail": detail,
        "method": method, "reveal_round": reveal_round, "reveal_block": reveal_block, "salt": salt,
        "reveal_status": reveal_status, "revealed_block": revealed_block, "chain_weights": chain_weights,
    }], schema=WEIGHT_SUBMISSIONS.polars_schema()), WEIGHT_SUBMISSIONS, where="push_weights")


def check_row(uids: list[int], weights: list[int]) -> None:
    """The row to send: same lengths, u16 values, uids strictly ascending, not empty, not all zero."""
    if len(uids) != len(weights):
        raise WeightsRefused(f"weights: {len(uids)} uids but {len(weights)} weights")
    if not uids:
        raise WeightsRefused("weights: empty row")
    if any(not 0 <= w <= U16_MAX for w in weights) or any(not 0 <= u <= U16_MAX for u in uids):
        raise WeightsRefused("weights: uids and weights must be u16")
    if any(b <= a for a, b in zip(uids[:-1], uids[1:], strict=True)):
        raise WeightsRefused("weights: uids must be strictly ascending (no duplicates)")
    if not any(weights):
        raise WeightsRefused("weights: all weights are zero")


def push_weights(chain, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey, *,
                 snapshot: Snapshot, dry_run: bool = True, epoch_id: str = "", projection: dict | None = None,
                 mechid: int = 0) -> pl.DataFrame:
    """Check, then (unless dry_run) send `uids`/`weights` (u16, ascending) for `hotkey` on `netuid`.

    `snapshot` is the metagraph the weights were computed from (its subnets part gives the tempo).
    `chain` is a ChainClient and, to send, a ChainWriter. Status in the returned row:
    dry_run (checked, not sent), included (sent, in a block, succeeded), failed (sent, rejected or
    failed; detail names the chain's error), refused (not sent; detail says why and what to wait for).
    """
    check_row(uids, weights)
    ss58 = hotkey.ss58_address
    head = chain.head_block(finalized=False)
    row = dict(netuid=netuid, block=head, hotkey_ss58=ss58, epoch_id=epoch_id, uids=uids, weights=weights,
               version_key=version_key, dry_run=dry_run, projection=projection)

    tempo = int(snapshot.subnets["tempo"][0]) if snapshot.subnets is not None else None
    if tempo is None:
        raise ValueError("push_weights: the snapshot has no subnets part (needed for the tempo)")
    if head - snapshot.block > tempo:
        return submission_row(**row, status="refused",
                    detail=f"stale snapshot: block {snapshot.block} is {head - snapshot.block} blocks behind the "
                           f"head {head}, more than a tempo ({tempo}); take a new snapshot")

    now = chain.snapshot(netuid, head, parts=("subnets", "neurons"))
    subnet = now.subnets.row(0, named=True)
    ours = now.neurons.filter(pl.col("hotkey") == ss58)
    if ours.height == 0:
        return submission_row(**row, status="refused", detail=f"hotkey {ss58} is not registered on netuid {netuid} at "
                                                    f"block {head}")
    uid = int(ours["uid"][0])
    last_update = int(ours["last_update"][0])
    limit = int(subnet["weights_rate_limit"])
    # The chain's rule (§6.2): block − LastUpdate ≥ limit, for the block that would include it (head + 1).
    if last_update > 0 and head + 1 < last_update + limit:  # commits are rate-limited the same way
        wait = last_update + limit - (head + 1)
        return submission_row(**row, status="refused",
                    detail=f"weights rate limit: uid {uid} set weights at block {last_update}, the limit is {limit} "
                           f"blocks; wait {wait} more block(s) (head {head})")
    self_weight = uids == [uid]
    is_owner = subnet["owner_hotkey"] == ss58
    if not ours["validator_permit"][0] and not self_weight and not is_owner:
        return submission_row(**row, status="refused",
                            detail=f"uid {uid} has no validator permit on netuid {netuid}; only "
                                   f"a single self-weight would be accepted")
    required = min(int(subnet["min_allowed_weights"]), int(subnet["subnetwork_n"]))
    if len(uids) < required and not self_weight:
        return submission_row(**row, status="refused",
                            detail=f"{len(uids)} weights, the subnet requires at least {required} "
                                   f"(min_allowed_weights)")
    limit_u16 = int(subnet["max_weight_limit"])
    # The chain compares max/sum with limit/65535 in I32F32 (§6.2; exempt: self-weight, limit 65535).
    # This exact rational pre-check allows one u16 step of slack, so it never refuses what the
    # fixed-point check would accept; a row over the limit by less fails on chain, named.
    if limit_u16 < U16_MAX and not self_weight and max(weights) * U16_MAX > (limit_u16 + 1) * sum(weights):
        return submission_row(**row, status="refused",
                            detail=f"largest weight is {max(weights) / sum(weights):.6f} of the "
                                   f"row, above max_weight_limit {limit_u16}/65535")
    if version_key < int(subnet["weights_version"]):
        return submission_row(**row, status="refused", detail=f"version_key {version_key} is below the subnet's "
                                                    f"weights_version {subnet['weights_version']}")
    # How the subnet takes weights now (a commit where it runs commit-reveal: never plain weights there).
    method = chain.push_method(netuid)
    if dry_run:
        how = method if method == "set_weights" else f"{method} (commit-reveal enabled)"
        return submission_row(**row, status="dry_run", method=method,
                              detail=f"dry run: would {how} for uid {uid}; nothing sent")

    log.info("sending weights", extra={"netuid": netuid, "uid": uid, "hotkey": ss58, "edges": len(uids),
                                       "method": method})
    if method == "set_weights":
        result = chain.set_weights(netuid, list(uids), list(weights), version_key, hotkey, mechid=mechid)
        commit = None
    else:
        commit = chain.commit_weights(netuid, list(uids), list(weights), version_key, hotkey, mechid=mechid)
        result = commit.submission
    status = ("included" if commit is None else "committed") if result.ok else "failed"
    detail = ", ".join(result.events) if result.ok else (result.error or "failed without an error name")
    log.info("weights %s", status, extra={"netuid": netuid, "uid": uid, "block": result.block,
                                          "extrinsic_hash": result.extrinsic_hash, "error": result.error})
    reveal = {} if commit is None else dict(
        reveal_round=commit.reveal_round, reveal_block=commit.reveal_block, salt=commit.salt,
        reveal_status="pending" if result.ok else None)
    return submission_row(**row, status=status, extrinsic_hash=result.extrinsic_hash, included_block=result.block,
                          detail=detail, method=method, **reveal)


def settle_commit(chain, row: dict, snapshot: Snapshot, hotkey) -> pl.DataFrame | None:
    """The weight_submissions row of a pending commit, brought up to date (None: nothing to record yet).

    Hash commit whose reveal window has come: send reveal_weights. Either kind: when the chain holds the
    committed row (as it stores it, chain_stored_row) the reveal landed: revealed, with the row the chain
    holds; a commit still not revealed after its reveal period and one more epoch is missed.
    """
    netuid, head = snapshot.netuid, snapshot.block
    ours = snapshot.neurons.filter(pl.col("hotkey") == hotkey.ss58_address)
    if ours.height == 0:
        return None
    uid = int(ours["uid"][0])
    updates: dict = {}
    if row["method"] == "commit_hash" and row["reveal_block"] is not None and head + 1 >= row["reveal_block"]:
        result = chain.reveal_weights(netuid, row["uids"], row["weights"], row["salt"], row["version_key"], hotkey)
        if not result.ok:
            updates.update(reveal_status="failed", detail=f"{row['detail']}; reveal failed: {result.error}")
    held = chain.stored_weights(netuid, uid)
    expected = list(zip(row["uids"], chain_stored_row(row["weights"]), strict=True))
    if held == expected:
        updates.update(reveal_status="revealed", chain_weights=[w for _, w in held],
                       revealed_block=int(chain.snapshot(netuid, chain.head_block(finalized=False),
                                                         parts=("neurons",)).neurons["last_update"][uid]))
    elif "reveal_status" not in updates:
        tempo = int(snapshot.subnets["tempo"][0])
        period = snapshot.subnets["reveal_period_epochs"][0] or 1
        if head > int(row["included_block"]) + (int(period) + 2) * (tempo + 1):
            updates.update(reveal_status="missed", chain_weights=[w for _, w in held])
    if not updates:
        return None
    return validate_frame(pl.DataFrame([{**row, **updates}], schema=WEIGHT_SUBMISSIONS.polars_schema()),
                          WEIGHT_SUBMISSIONS, where="settle_commit")
