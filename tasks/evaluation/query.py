"""Ask every miner with an axon for forecasts of an epoch's challenges (DESIGN.md §7, protocol.py).

Miners are untrusted: any of them may stall, refuse, close the connection, or answer garbage or a
10 MB body. Nothing a miner does makes this module raise; every miner gets one recorded outcome per
challenge (RESPONSES table), with one of these statuses:

    ok       HTTP 2xx whose body parsed; `forecast` holds the values as sent (validate.py judges them)
    timeout  no complete answer within `timeout_s`, or not complete by the batch deadline
    refused  the miner answered HTTP 4xx/5xx (e.g. 403: it does not know us as a permitted validator)
    invalid  an answer we cannot use: not JSON, not the protocol's schema, too big, no forecast for
             this challenge, an unexpected HTTP status or content encoding
    error    no HTTP exchange: connection refused, reset, DNS, TLS ...

Time limits: each miner has `timeout_s` for the whole exchange (connect, send, headers, body); the
batch has `deadline_s` from its start, after which unfinished requests are cancelled, so the call
returns by deadline_s + CANCEL_GRACE_S whatever the miners do. Response bodies are read as they
stream in and abandoned at `max_response_bytes`, so a huge body costs at most that much memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import time
from dataclasses import dataclass

import httpx
import polars as pl

from schemas import validate_frame
from schemas.evaluation import RESPONSES
from tasks.evaluation.challenges import request_body
from tasks.evaluation.protocol import FORECAST_PATH, sign_request

DEFAULT_TIMEOUT_S = 12.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024  # 32 challenges × 24 values need ~20 KB
DEFAULT_CONCURRENCY = 64
CANCEL_GRACE_S = 0.5  # time given to cancelled requests (and the client) to close their sockets
REFUSAL_DETAIL_BYTES = 512  # how much of a 4xx/5xx body we keep as the detail


@dataclass
class _Outcome:
    """One miner's outcome for the whole batch; `forecasts` only for status ok."""

    status: str
    latency_ms: float | None = None
    payload_bytes: int = 0
    detail: str | None = None
    forecasts: dict[int, list[float] | str] | None = None  # query_id -> values, or why unusable


class _Unusable(Exception):
    """The miner's body is not an answer; the message is the detail."""


def axons(neurons: pl.DataFrame, *, exclude_hotkey: str | None = None, path: str = FORECAST_PATH) -> pl.DataFrame:
    """The neurons that can be queried: one row per uid with a served axon (ip set and not 0.0.0.0,
    port > 0), minus `exclude_hotkey` (the validator itself); columns uid, hotkey, url."""
    served = neurons.filter(pl.col("axon_ip").is_not_null() & (pl.col("axon_ip") != "")
                            & (pl.col("axon_ip") != "0.0.0.0") & pl.col("axon_port").is_not_null()
                            & (pl.col("axon_port") > 0))
    if exclude_hotkey is not None:
        served = served.filter(pl.col("hotkey") != exclude_hotkey)
    host = (pl.when(pl.col("axon_ip").str.contains(":"))  # IPv6 literals go in brackets in a URL
            .then(pl.concat_str(pl.lit("["), pl.col("axon_ip"), pl.lit("]")))
            .otherwise(pl.col("axon_ip")))
    url = pl.concat_str(pl.lit("http://"), host, pl.lit(":"), pl.col("axon_port").cast(pl.String),
                        pl.lit(path))
    return served.select(pl.col("uid").cast(pl.UInt16), "hotkey", url.alias("url")).sort("uid")


def parse_answer(body: bytes, query_ids: set[int]) -> dict[int, list[float] | str]:
    """The forecasts of a response body: query_id -> values, or a string saying why that entry is
    unusable. Raises _Unusable when the body as a whole is not the protocol's response. NaN and
    infinities are kept (JSON allows them here); validate.py rejects them per challenge."""
    try:
        # UTF-8 only (RFC 8259 §8.1): json.loads(bytes) would also guess UTF-16/32 from the first bytes
        answer = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise _Unusable(f"body is not JSON: {str(err)[:200]}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("forecasts"), list):
        raise _Unusable('body is not {"forecasts": [...]}')
    forecasts: dict[int, list[float] | str] = {}
    for entry in answer["forecasts"]:
        if not isinstance(entry, dict) or type(entry.get("query_id")) is not int:
            raise _Unusable("a forecast entry is not {\"query_id\": int, \"values\": [...]}")
        query_id = entry["query_id"]
        if query_id not in query_ids:
            continue  # an answer to a question we did not ask is ignored
        if query_id in forecasts:
            raise _Unusable(f"query_id {query_id} answered twice")
        values = entry.get("values")
        if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
            forecasts[query_id] = "values is not a list of numbers"
            continue
        try:
            forecasts[query_id] = [float(v) for v in values]
        except OverflowError:  # an integer beyond float64
            forecasts[query_id] = "a value does not fit a float64"
    return forecasts


async def _ask(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], query_ids: set[int],
               timeout_s: float, max_response_bytes: int) -> _Outcome:
    """One signed POST to one miner, fully guarded: returns an outcome, never raises (but cancels)."""
    start = time.monotonic()

    def elapsed_ms() -> float:
        return (time.monotonic() - start) * 1000.0

    read = 0
    try:
        async with asyncio.timeout(timeout_s), client.stream("POST", url, content=body, headers=headers) as resp:
            if resp.status_code >= 400:
                snippet = b""
                async for chunk in resp.aiter_raw():
                    snippet += chunk
                    if len(snippet) >= REFUSAL_DETAIL_BYTES:
                        break
                read = len(snippet)
                text = snippet[:REFUSAL_DETAIL_BYTES].decode("utf-8", "replace")
                return _Outcome("refused", elapsed_ms(), read, f"HTTP {resp.status_code}: {text}")
            if not 200 <= resp.status_code < 300:
                return _Outcome("invalid", elapsed_ms(), 0, f"unexpected HTTP {resp.status_code}")
            encoding = resp.headers.get("content-encoding", "identity").lower()
            if encoding != "identity":  # we asked for identity; a compressed body could be a bomb
                return _Outcome("invalid", elapsed_ms(), 0, f"unexpected content encoding {encoding!r}")
            declared = resp.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_response_bytes:
                return _Outcome("invalid", elapsed_ms(), 0,
                                f"declared body of {declared} bytes exceeds the {max_response_bytes}-byte limit; "
                                f"not read")
            chunks = []
            async for chunk in resp.aiter_raw():
                read += len(chunk)
                if read > max_response_bytes:
                    return _Outcome("invalid", elapsed_ms(), read,
                                    f"body exceeds the {max_response_bytes}-byte limit; stopped reading after "
                                    f"{read} bytes")
                chunks.append(chunk)
        latency_ms = elapsed_ms()
    except TimeoutError:
        return _Outcome("timeout", elapsed_ms(), read, f"no complete answer within the {timeout_s} s timeout")
    except httpx.TimeoutException as err:
        return _Outcome("timeout", elapsed_ms(), read, f"{type(err).__name__} within the {timeout_s} s timeout")
    except httpx.TransportError as err:
        return _Outcome("error", elapsed_ms(), read, f"{type(err).__name__}: {str(err)[:200]}")
    except asyncio.CancelledError:
        raise
    except Exception as err:  # whatever else a miner provokes is its failure, not the batch's
        return _Outcome("error", elapsed_ms(), read, f"{type(err).__name__}: {str(err)[:200]}")
    try:
        forecasts = parse_answer(b"".join(chunks), query_ids)
    except _Unusable as err:
        return _Outcome("invalid", latency_ms, read, str(err))
    return _Outcome("ok", latency_ms, read, None, forecasts)


async def query_miners_async(neurons: pl.DataFrame, challenges: pl.DataFrame, keypair, *,
                             timeout_s: float = DEFAULT_TIMEOUT_S, deadline_s: float | None = None,
                             max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                             concurrency: int = DEFAULT_CONCURRENCY, path: str = FORECAST_PATH,
                             body: bytes | None = None) -> pl.DataFrame:
    """Query every neuron with an axon (columns uid, hotkey, axon_ip, axon_port) with the epoch's
    challenges, one request signed by `keypair` (sr25519 Keypair) per miner, at most `concurrency`
    at once. Returns RESPONSES rows: one per (miner, query_id), for every queried miner.

    `deadline_s` (default timeout_s + 2) bounds the whole batch: requests still running then are
    cancelled and recorded as timeout, as are miners still waiting for a connection slot.
    """
    deadline_s = timeout_s + 2.0 if deadline_s is None else deadline_s
    epoch_id = challenges["epoch_id"][0]
    body = request_body(challenges) if body is None else body  # a task plug-in may send its own shape
    query_ids = set(challenges["query_id"].to_list())
    miners = axons(neurons, exclude_hotkey=keypair.ss58_address, path=path)
    slots = asyncio.Semaphore(concurrency)
    started: dict[int, float] = {}

    async def ask(uid: int, hotkey: str, url: str) -> _Outcome:
        async with slots:
            started[uid] = time.monotonic()
            headers = sign_request(body, keypair, hotkey, path=path)
            headers.update({"Content-Type": "application/json", "Accept-Encoding": "identity"})
            return await _ask(client, url, body, headers, query_ids, timeout_s, max_response_bytes)

    client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), trust_env=False, follow_redirects=False,
                               limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0))
    outcomes: dict[int, _Outcome] = {}
    # One grace for cancelling AND closing, so the call returns by deadline_s + CANCEL_GRACE_S (two
    # graces in a row made the worst case deadline_s + 2 × CANCEL_GRACE_S).
    grace_ends = time.monotonic() + deadline_s + CANCEL_GRACE_S
    try:
        tasks = {asyncio.create_task(ask(uid, hotkey, url)): uid for uid, hotkey, url in miners.iter_rows()}
        if tasks:
            await asyncio.wait(tasks, timeout=deadline_s)
        for task, uid in tasks.items():
            if task.done() and not task.cancelled() and task.exception() is None:
                outcomes[uid] = task.result()
                continue
            if task.done() and not task.cancelled():  # a bug of ours; still never fail the batch for it
                err = task.exception()
                outcomes[uid] = _Outcome("error", None, 0, f"{type(err).__name__}: {str(err)[:200]}")
                continue
            task.cancel()
            if uid in started:
                waited_ms = (time.monotonic() - started[uid]) * 1000.0
                outcomes[uid] = _Outcome("timeout", waited_ms, 0,
                                         f"cancelled at the batch deadline of {deadline_s} s")
            else:
                outcomes[uid] = _Outcome("timeout", None, 0,
                                         f"not queried: the batch deadline of {deadline_s} s came while waiting "
                                         f"for one of {concurrency} connection slots")
        pending = [task for task in tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(grace_ends - time.monotonic(), 0.0))
    finally:
        # Closing the sockets of hostile peers must not fail the batch, nor outlast the grace.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.aclose(), max(grace_ends - time.monotonic(), 0.05))
    return responses_frame(epoch_id, miners, challenges["query_id"], outcomes)


def responses_frame(epoch_id: str, miners: pl.DataFrame, query_ids: pl.Series,
                    outcomes: dict[int, _Outcome]) -> pl.DataFrame:
    """RESPONSES rows: each miner's outcome repeated per challenge, with per-challenge forecasts of ok
    answers (an ok answer without a usable forecast for a challenge is invalid for that challenge)."""
    per_miner = pl.DataFrame({
        "miner_uid": miners["uid"], "hotkey": miners["hotkey"],
        "status": [outcomes[u].status for u in miners["uid"]],
        "latency_ms": [outcomes[u].latency_ms for u in miners["uid"]],
        "payload_bytes": [outcomes[u].payload_bytes for u in miners["uid"]],
        "detail": [outcomes[u].detail for u in miners["uid"]],
    }, schema_overrides={"latency_ms": pl.Float64, "payload_bytes": pl.UInt64, "detail": pl.String,
                         "miner_uid": pl.UInt16, "hotkey": pl.String, "status": pl.String})
    uid_col, qid_col, values_col, problem_col = [], [], [], []
    for uid in miners["uid"]:
        for query_id, entry in (outcomes[uid].forecasts or {}).items():
            uid_col.append(uid)
            qid_col.append(query_id)
            values_col.append(entry if isinstance(entry, list) else None)
            problem_col.append(entry if isinstance(entry, str) else None)
    answered = pl.DataFrame({"miner_uid": uid_col, "query_id": qid_col, "forecast": values_col,
                             "problem": problem_col},
                            schema={"miner_uid": pl.UInt16, "query_id": pl.UInt32,
                                    "forecast": pl.List(pl.Float64), "problem": pl.String})
    ok = pl.col("status") == "ok"
    usable = ok & pl.col("forecast").is_not_null()
    rows = (per_miner.join(pl.DataFrame({"query_id": query_ids.cast(pl.UInt32)}), how="cross")
            .join(answered, on=["miner_uid", "query_id"], how="left")
            .with_columns(
                pl.lit(epoch_id, pl.String).alias("epoch_id"),
                pl.when(ok & ~usable).then(pl.lit("invalid")).otherwise(pl.col("status")).alias("status"),
                pl.when(ok & ~usable)
                .then(pl.coalesce(pl.col("problem"), pl.lit("no forecast for this query_id")))
                .otherwise(pl.col("detail")).alias("detail"),
                pl.when(usable).then(pl.col("forecast")).alias("forecast"),
            ))
    return validate_frame(rows, RESPONSES, where=f"epoch {epoch_id}")


def query_miners(neurons: pl.DataFrame, challenges: pl.DataFrame, keypair, **options) -> pl.DataFrame:
    """Synchronous `query_miners_async` for flows and scripts; runs in a fresh thread when called
    from inside a running event loop (asyncio.run cannot nest)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(query_miners_async(neurons, challenges, keypair, **options))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, query_miners_async(neurons, challenges, keypair, **options)).result()

