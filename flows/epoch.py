"""Flow `epoch`: the validator's evaluation epoch, end to end (DESIGN.md §1, §7, §8).

snapshot → challenges → query → validate → score → smooth → weights → projection → push → record.

Every step's output is recorded in the warehouse under the epoch's id, `<netuid>:<tempo index of the
head block>`, so a validator killed mid-epoch and started again within the same tempo resumes it:
challenges, answers and scores already stored are reused (nothing is asked twice, nothing is
smoothed twice) and weights already included on chain for the epoch are not pushed again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ingest import store_snapshots
from tasks.chain import Snapshot, open_chain
from tasks.chain.wallet import load_hotkey
from tasks.evaluation.plugin import DEFAULT_TASK, ChallengeOptions, Task, load_task
from tasks.evaluation.query import query_miners
from tasks.evaluation.smoothing import previous_smoothed, smooth_scores
from tasks.weights.convert import WeightsRefused, chain_stored_row, scores_to_weights
from tasks.weights.projection import PROJECTED_COLUMNS, project_epoch
from tasks.weights.push import push_weights, submission_row
from warehouse import Warehouse

#: Called once the epoch's scores are stored, before weights are computed and pushed. None here: nothing
#: a user sets can reach it. The crash tests install one (tests/support/hooked_cli.py) to kill the
#: validator exactly between scoring and pushing.
after_scores_hook: Callable[[], None] | None = None
#: The same, once the epoch's answers are stored (before any settlement of a delayed-truth task).
after_answers_hook: Callable[[], None] | None = None


def refuse_secret_uri(hotkey_uri: str | None) -> None:
    """Only public development paths (//Alice) may be a hotkey URI: anything else may be a mnemonic or seed.

    Callers check before starting the flow: Prefect stores a flow run's parameters when the run is
    created, before the flow's body runs, so a check inside the flow alone comes too late.
    """
    if hotkey_uri is not None and not hotkey_uri.startswith("//"):
        raise ValueError("--hotkey-uri takes a development key path such as //Alice; for a real key use "
                         "--wallet NAME --hotkey NAME (a bittensor keyfile)")


def epoch_id_of(netuid: int, block: int, tempo: int) -> str:
    return f"{netuid}:{block // max(tempo, 1)}"


@task(name="snapshot", retries=3, retry_delay_seconds=[1, 2, 4], cache_policy=NO_CACHE)
def take_snapshot(client, netuid: int, wh: Warehouse, source: str) -> Snapshot:
    snap = client.snapshot(netuid, client.head_block(finalized=True))
    store_snapshots(wh, [snap], source)
    return snap


@task(name="challenges", cache_policy=NO_CACHE)
def challenges_for(wh: Warehouse, plugin: Task, epoch_id: str, netuid: int, block: int,
                   options: ChallengeOptions) -> pl.DataFrame:
    stored = wh.read("challenges", pl.col("epoch_id") == epoch_id)
    if stored.height:
        return stored.sort("query_id")
    challenges = plugin.make_challenges(epoch_id, netuid, block, options)
    wh.write("challenges", challenges)
    return challenges


@task(name="query-miners", cache_policy=NO_CACHE)
def ask_miners(wh: Warehouse, plugin: Task, epoch_id: str, neurons: pl.DataFrame, challenges: pl.DataFrame,
               keypair, *, timeout_s: float, deadline_s: float | None) -> pl.DataFrame:
    responses = query_miners(neurons, challenges, keypair, timeout_s=timeout_s, deadline_s=deadline_s,
                             path=plugin.path, body=plugin.request_body(challenges))
    wh.write("responses", responses)
    return responses


@task(name="score-and-smooth", cache_policy=NO_CACHE)
def score_and_smooth(wh: Warehouse, plugin: Task, epoch_id: str, netuid: int, block: int, responses: pl.DataFrame,
                     challenges: pl.DataFrame, alpha: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    batch = plugin.validate(responses, challenges)
    per_miner = plugin.score(batch, challenges)
    previous = previous_smoothed(wh, netuid, block, epoch_id)
    scores = smooth_scores(per_miner, previous, epoch_id=epoch_id, netuid=netuid, block=block, alpha=alpha)
    wh.write("scores", scores)
    return scores, batch.verdicts


@task(name="settle", cache_policy=NO_CACHE)
def settle_earlier_epochs(wh: Warehouse, plugin: Task, netuid: int, head_block: int, alpha: float) -> list[str]:
    """Epochs of a delayed-truth task whose truth has arrived by `head_block`: their truth filled in the
    recorded challenges, then their recorded answers validated, scored and smoothed, oldest first. The
    ids of the epochs settled."""
    pending = wh.read("challenges", pl.col("truth").is_null() & (pl.col("task") == plugin.name), netuid=netuid)
    settled = []
    for epoch_id, block in (pending.group_by("epoch_id").agg(pl.col("block").first(), pl.col("truth_block").max())
                            .filter(pl.col("truth_block") <= head_block).sort("block")
                            .select("epoch_id", "block").iter_rows()):
        challenges = plugin.settle(pending.filter(pl.col("epoch_id") == epoch_id), head_block).sort("query_id")
        responses = wh.read("responses", pl.col("epoch_id") == epoch_id)
        wh.write("challenges", challenges)
        score_and_smooth.fn(wh, plugin, epoch_id, netuid, block, responses, challenges, alpha)
        settled.append(epoch_id)
    return settled


def _no_scores_yet(client, wh: Warehouse, snap: Snapshot, epoch_id: str, hotkey, challenges: pl.DataFrame,
                   push: bool, version_key: int) -> dict:
    """A delayed-truth task before any epoch is settled: nothing to weigh; recorded as refused."""
    arrives = challenges["truth_block"].max()
    submission = submission_row(snap.netuid, client.head_block(finalized=False), hotkey.ss58_address, epoch_id, [],
                                [], version_key, not push, None, "refused",
                                detail=f"no settled scores yet: the truth of epoch {epoch_id} arrives at block "
                                       f"{arrives}; a later epoch settles it and sets weights")
    wh.write("weight_submissions", submission)
    return submission.row(0, named=True)


def latest_scores(wh: Warehouse, netuid: int, block: int) -> pl.DataFrame:
    """The scores of the subnet's latest scored epoch up to `block` (empty when none is scored yet)."""
    scored = wh.read("scores", netuid=netuid, block_end=block)
    if scored.height == 0:
        return scored
    return scored.filter(pl.col("block") == scored["block"].max())


def included_by_earlier_attempt(client, snap: Snapshot, hotkey_ss58: str, uids: list[int], weights: list[int],
                                epoch_start_block: int) -> int | None:
    """The block that included this row for us since the epoch began, if an earlier attempt sent it.

    A validator killed after its weights were included but before it recorded them must not send
    them again: on chain, our uid's LastUpdate is after the epoch's first snapshot and our stored row
    is exactly this one (upscaled as the chain stores it, spec §6).
    """
    now = client.snapshot(snap.netuid, client.head_block(finalized=False), parts=("neurons", "weights"))
    ours = now.neurons.filter(pl.col("hotkey") == hotkey_ss58)
    if ours.height == 0 or int(ours["last_update"][0]) <= epoch_start_block:
        return None
    stored = now.weights.filter((pl.col("mechid") == 0) & (pl.col("validator_uid") == ours["uid"][0]))
    if stored["miner_uid"].to_list() != list(uids) or stored["weight"].to_list() != chain_stored_row(weights):
        return None
    return int(ours["last_update"][0])


@task(name="settle-reveals", cache_policy=NO_CACHE)
def settle_reveals(client, wh: Warehouse, snap: Snapshot, hotkey) -> pl.DataFrame:
    """Follow our earlier commits to their reveal (commit-reveal subnets): open hash commits whose reveal
    window has come; for every pending commit, record whether the chain now holds the committed row (and
    what it holds). Returns the rows it updated (weight_submissions, same keys: the row is replaced)."""
    from tasks.weights.push import settle_commit

    pending = wh.read("weight_submissions", (pl.col("validator_hotkey") == hotkey.ss58_address)
                      & (pl.col("status") == "committed") & (pl.col("reveal_status") == "pending"),
                      netuid=snap.netuid)
    updated = [settle_commit(client, row, snap, hotkey) for row in pending.iter_rows(named=True)]
    updated = [u for u in updated if u is not None]
    if updated:
        wh.write("weight_submissions", pl.concat(updated))
        return pl.concat(updated)
    return pending.clear()


@task(name="weights-projection-push", cache_policy=NO_CACHE)
def weigh_and_push(client, wh: Warehouse, snap: Snapshot, epoch_id: str, scores: pl.DataFrame, hotkey, *,
                   push: bool, version_key: int, epoch_start_block: int) -> dict:
    netuid = snap.netuid
    done = wh.read("weight_submissions", (pl.col("epoch_id") == epoch_id)
                   & pl.col("status").is_in(["included", "committed"]), netuid=netuid)
    if done.height:
        row = done.row(0, named=True)
        return {**row, "note": f"weights for this epoch were already {row['status']} on chain; not sent again"}
    subnet = snap.subnets.row(0, named=True)
    ours = snap.neurons.filter(pl.col("hotkey") == hotkey.ss58_address)
    our_uid = int(ours["uid"][0])
    try:
        row = scores_to_weights(scores["miner_uid"].to_numpy(), scores["smoothed_score"].to_numpy(),
                                num_neurons=int(subnet["subnetwork_n"]),
                                min_allowed_weights=int(subnet["min_allowed_weights"]),
                                max_weight_limit_u16=int(subnet["max_weight_limit"]))
    except WeightsRefused as refused:
        # No weights from an empty, NaN or all-zero score vector: recorded, never pushed.
        submission = submission_row(netuid, client.head_block(finalized=False), hotkey.ss58_address, epoch_id, [],
                                    [], version_key, not push, None, "refused", detail=str(refused))
        wh.write("weight_submissions", submission)
        return submission.row(0, named=True)
    projection = project_epoch(snap.subnets, snap.neurons, snap.weights, snap.bonds, our_uid, row.uids, row.weights)
    commit_reveal = bool(subnet["commit_reveal_enabled"])
    if commit_reveal:
        projection = reveal_delayed_projection(snap, our_uid, projection)
    if push and commit_reveal:
        earlier = committed_by_earlier_attempt(client, snap, hotkey.ss58_address, epoch_start_block)
        if earlier is not None:
            submission = submission_row(netuid, earlier - 1, hotkey.ss58_address, epoch_id, row.uids, row.weights,
                                        version_key, False, projection, "committed", included_block=earlier,
                                        method=client.push_method(netuid), reveal_status="missed",
                                        detail=f"an earlier attempt of this epoch sent a commit at block {earlier} "
                                               f"(our LastUpdate; found on chain after a restart, its reveal data "
                                               f"was lost with it); not committed again")
            wh.write("weight_submissions", submission)
            return {**submission.row(0, named=True), "projection": projection}
    included = (included_by_earlier_attempt(client, snap, hotkey.ss58_address, row.uids, row.weights,
                                            epoch_start_block) if push and not commit_reveal else None)
    if included is not None:
        submission = submission_row(netuid, included - 1, hotkey.ss58_address, epoch_id, row.uids, row.weights,
                                    version_key, False, projection, "included", included_block=included,
                                    detail=f"included at block {included} by an earlier attempt of this epoch "
                                           f"(found on chain after a restart); not sent again")
        wh.write("weight_submissions", submission)
        return {**submission.row(0, named=True), "projection": projection}
    submission = push_weights(client, netuid, row.uids, row.weights, version_key, hotkey, snapshot=snap,
                              dry_run=not push, epoch_id=epoch_id, projection=projection)
    wh.write("weight_submissions", submission)
    return {**submission.row(0, named=True), "projection": projection}


def committed_by_earlier_attempt(client, snap: Snapshot, hotkey_ss58: str, epoch_start_block: int) -> int | None:
    """The block of a commit an earlier attempt of this epoch sent, if any: a commit sets our LastUpdate,
    so a LastUpdate after the epoch's first snapshot means one was included (never commit twice)."""
    now = client.snapshot(snap.netuid, client.head_block(finalized=False), parts=("neurons",))
    ours = now.neurons.filter(pl.col("hotkey") == hotkey_ss58)
    if ours.height == 0 or int(ours["last_update"][0]) <= epoch_start_block:
        return None
    return int(ours["last_update"][0])


def reveal_delayed_projection(snap: Snapshot, our_uid: int, at_reveal: dict) -> dict:
    """With commit-reveal the next epoch still runs on the row the chain holds for us now (our new row is
    revealed reveal_period_epochs later): the projection of the next epoch uses that row; the new row's
    projection is kept as `at_reveal`."""
    stored = snap.weights.filter((pl.col("validator_uid") == our_uid) & (pl.col("mechid") == 0))
    period = snap.subnets["reveal_period_epochs"][0]
    if stored.height == 0:  # nothing stored for us: the next epoch is the snapshot as it is
        next_epoch = {**at_reveal, **{k: at_reveal[f"baseline_{k}"] for k in PROJECTED_COLUMNS}}
    else:
        next_epoch = project_epoch(snap.subnets, snap.neurons, snap.weights, snap.bonds, our_uid,
                                   stored["miner_uid"].to_list(), stored["weight"].to_list())
    return {**next_epoch, "at_reveal": at_reveal, "reveal_period_epochs": None if period is None else int(period)}


def summary_markdown(epoch_id: str, snap: Snapshot, responses: pl.DataFrame, scores: pl.DataFrame,
                     submission: dict) -> str:
    statuses = responses.group_by("status").agg(pl.col("miner_uid").n_unique().alias("miners")).sort("status")
    top = scores.sort("smoothed_score", descending=True).head(10)
    lines = [f"# Epoch {epoch_id} — netuid {snap.netuid}, block {snap.block}", "",
             f"source: `{snap.blocks['source'][0] if snap.blocks is not None else ''}`", "",
             "## Miners answered", "", "| status | miners |", "| --- | --- |"]
    lines += [f"| {s} | {m} |" for s, m in statuses.iter_rows()]
    lines += ["", "## Top scores", "", "| uid | batch | smoothed |", "| --- | --- | --- |"]
    lines += [f"| {u} | {b:.4f} | {s:.4f} |" for u, b, s in top.select("miner_uid", "batch_score",
                                                                         "smoothed_score").iter_rows()]
    lines += ["", "## Weights", "", f"status: **{submission['status']}** — {submission.get('detail') or ''}", ""]
    if submission.get("uids"):
        lines += ["| uid | u16 weight |", "| --- | --- |"]
        lines += [f"| {u} | {w} |" for u, w in zip(submission["uids"], submission["weights"], strict=True)]
    projection = submission.get("projection")
    if projection:
        lines += ["", f"projected validator trust {projection['validator_trust']} (now "
                      f"{projection['baseline_validator_trust']}), dividends {projection['dividends']} (now "
                      f"{projection['baseline_dividends']}), emission {projection['emission']} rao"]
        at_reveal = projection.get("at_reveal")
        if at_reveal:
            lines += [f"commit-reveal: the next epoch runs on the row the chain holds now; this row takes effect "
                      f"{projection.get('reveal_period_epochs')} epoch(s) later (projected there: validator trust "
                      f"{at_reveal['validator_trust']}, dividends {at_reveal['dividends']})"]
    return "\n".join(lines)


@flow(name="epoch", log_prints=True)
def epoch_flow(chain: str, netuid: int, warehouse: str, hotkey_uri: str | None = None, wallet: str | None = None,
               hotkey: str = "default", wallet_path: str | None = None, push: bool = False,
               n_challenges: int = 16, context_len: int = 96, horizon: int = 24, timeout_s: float = 5.0,
               deadline_s: float | None = None, ema_alpha: float = 0.1, series_path: str | None = None,
               seed: int = 0, version_key: int = 0, task: str = DEFAULT_TASK) -> dict:
    """One evaluation epoch of the validator `hotkey` on `netuid` for the task plug-in `task`; dry run
    unless push=True."""
    refuse_secret_uri(hotkey_uri)
    plugin = load_task(task)
    key = load_hotkey(hotkey_uri=hotkey_uri, wallet_name=wallet, hotkey_name=hotkey, wallet_path=wallet_path)
    wh = Warehouse(Path(warehouse))
    client = open_chain(chain)
    try:
        snap = take_snapshot(client, netuid, wh, chain)
        if snap.neurons.filter(pl.col("hotkey") == key.ss58_address).height == 0:
            raise ValueError(f"hotkey {key.ss58_address} is not registered on netuid {netuid} at block {snap.block}")
        tempo = int(snap.subnets["tempo"][0])
        epoch_id = epoch_id_of(netuid, snap.block, tempo)
        options = ChallengeOptions(seed=seed, n_challenges=n_challenges, context_len=context_len, horizon=horizon,
                                   series_path=series_path)
        challenges = challenges_for(wh, plugin, epoch_id, netuid, snap.block, options)
        settled = settle_earlier_epochs(wh, plugin, netuid, snap.block, ema_alpha)
        responses = wh.read("responses", pl.col("epoch_id") == epoch_id)
        if responses.height == 0:  # a resumed epoch does not ask twice
            responses = ask_miners(wh, plugin, epoch_id, snap.neurons, challenges, key.keypair,
                                   timeout_s=timeout_s, deadline_s=deadline_s)
            if after_answers_hook is not None:
                after_answers_hook()
        scores = wh.read("scores", pl.col("epoch_id") == epoch_id)
        truth_known = challenges["truth"].null_count() == 0
        if scores.height == 0 and truth_known:
            scores, _ = score_and_smooth(wh, plugin, epoch_id, netuid, snap.block, responses, challenges, ema_alpha)
            if after_scores_hook is not None:
                after_scores_hook()
        if not truth_known:  # the truth of this epoch arrives later: weights from the latest settled epoch
            scores = latest_scores(wh, netuid, snap.block)
        if push:
            settle_reveals(client, wh, snap, key)
        submission = (weigh_and_push(client, wh, snap, epoch_id, scores, key, push=push, version_key=version_key,
                                     epoch_start_block=int(challenges["block"][0]))
                      if truth_known or scores.height else
                      _no_scores_yet(client, wh, snap, epoch_id, key, challenges, push, version_key))
        create_markdown_artifact(key=f"epoch-{netuid}", markdown=summary_markdown(epoch_id, snap, responses, scores,
                                                                                  submission),
                                 description=f"validator epoch {epoch_id}")
    finally:
        client.close()
    return {"epoch_id": epoch_id, "block": snap.block, "responses": responses, "scores": scores,
            "submission": submission, "task": plugin.name, "settled": settled}
