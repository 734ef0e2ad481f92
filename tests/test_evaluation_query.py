"""Querying miners over real HTTP (tasks/evaluation/query.py): a starlette app served by uvicorn on
127.0.0.1 plays many miners at once — each behaviour is selected by the miner hotkey the validator
signs for — and checks the validator's signature like a real miner would."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import polars as pl
import pytest
import uvicorn
from bittensor import http_auth
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from substrateinterface import Keypair

from schemas import validate_frame
from schemas.evaluation import RESPONSES
from tasks.evaluation import protocol
from tasks.evaluation.challenges import make_challenges
from tasks.evaluation.query import query_miners, query_miners_async
from tasks.evaluation.series import generate_series

HUGE_BODY_BYTES = 10 * 1024 * 1024
CAP_BYTES = 256 * 1024

VALIDATOR = Keypair.create_from_uri("//Alice")


def hotkey(name: str) -> str:
    return Keypair.create_from_uri(f"//{name}").ss58_address


def last_value_forecasts(request_json: dict) -> list[dict]:
    return [{"query_id": c["query_id"], "values": [c["context"][-1]] * c["horizon"]}
            for c in request_json["challenges"]]


class Responder:
    """Behaviours by miner hotkey; records what each one was sent."""

    def __init__(self):
        self.behaviour: dict[str, str] = {}
        self.huge_bytes_sent = 0
        self.nonces = http_auth.InMemoryNonceStore()

    async def forecast(self, request: Request) -> Response:
        body = await request.body()
        # The responder plays every miner: each request is verified by the SDK's own btauth/1 verifier
        # (bittensor 11.3.0), as an SDK miner with the hotkey the request is addressed to would.
        receiver = request.headers.get(http_auth.HEADER_RECEIVER, "")
        try:
            http_auth.verify(request.headers, body, method=request.method, path=request.url.path,
                             self_hotkey_ss58=receiver, nonce_store=self.nonces)
        except http_auth.AuthError as refused:
            return Response(type(refused).__name__, status_code=401)
        kind = self.behaviour.get(receiver, "unknown")
        asked = json.loads(body)
        if kind == "ok":
            return Response(json.dumps({"forecasts": last_value_forecasts(asked)}), media_type="application/json")
        if kind == "nan":
            forecasts = last_value_forecasts(asked)
            forecasts[0]["values"][0] = float("nan")
            return Response(json.dumps({"forecasts": forecasts}), media_type="application/json")
        if kind == "partial":  # answers all but the first challenge, one with strings
            forecasts = last_value_forecasts(asked)[1:]
            forecasts[0]["values"] = ["x"] * len(forecasts[0]["values"])
            return Response(json.dumps({"forecasts": forecasts}), media_type="application/json")
        if kind == "slow":
            for _ in range(600):  # stall until the validator hangs up (at most 30 s)
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.05)
            return Response("{}", media_type="application/json")
        if kind == "error500":
            return Response("internal failure", status_code=500)
        if kind == "badjson":
            return Response("{\"forecasts\": [", media_type="application/json")
        if kind == "huge":
            async def chunks():
                chunk = b" " * 65536
                for _ in range(HUGE_BODY_BYTES // len(chunk)):
                    self.huge_bytes_sent += len(chunk)
                    yield chunk
            return StreamingResponse(chunks(), media_type="application/json")
        if kind == "declared_huge":  # announces 10 MB up front: rejected before reading any of it
            async def never_sent():
                yield b"{"
            return StreamingResponse(never_sent(), media_type="application/json",
                                     headers={"content-length": str(HUGE_BODY_BYTES)})
        if kind == "drip":  # a valid-looking body, one byte every 50 ms: beats per-read timeouts
            async def drip():
                for _ in range(600):
                    yield b" "
                    await asyncio.sleep(0.05)
            return StreamingResponse(drip(), media_type="application/json")
        return Response("not a miner here", status_code=403)


@pytest.fixture(scope="module")
def responder():
    """A real uvicorn server on 127.0.0.1 (own thread), stopped at the end of the module."""
    handler = Responder()
    app = Starlette(routes=[Route(protocol.FORECAST_PATH, handler.forecast, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
                                           limit_concurrency=1000, backlog=256))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    assert server.started, "test responder did not start"
    handler.port = sock.getsockname()[1]
    yield handler
    server.should_exit = True
    thread.join(10)


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def neurons_for(responder: Responder, kinds: dict[int, str], *, port: int | None = None) -> pl.DataFrame:
    hotkeys = {uid: hotkey(f"miner-{uid}-{kind}") for uid, kind in kinds.items()}
    for uid, kind in kinds.items():
        responder.behaviour[hotkeys[uid]] = kind
    return pl.DataFrame({
        "uid": list(kinds), "hotkey": [hotkeys[u] for u in kinds],
        "axon_ip": ["127.0.0.1"] * len(kinds),
        "axon_port": [port or responder.port] * len(kinds),
    }, schema_overrides={"uid": pl.UInt16, "axon_port": pl.UInt16})


@pytest.fixture(scope="module")
def challenges() -> pl.DataFrame:
    return make_challenges(generate_series(4, 200, seed=3), "epoch-q", 1, 720, n_challenges=3,
                           context_len=48, horizon=6, seed=11)


def by_miner(responses: pl.DataFrame) -> dict[int, pl.DataFrame]:
    return {uid: rows.sort("query_id") for (uid,), rows in responses.group_by("miner_uid")}


def test_each_kind_of_miner_gets_its_status(responder, challenges):
    kinds = {0: "ok", 1: "slow", 2: "error500", 3: "badjson", 4: "huge", 5: "nan", 6: "partial",
             7: "unknown", 10: "declared_huge", 11: "drip"}
    neurons = neurons_for(responder, kinds)
    dead = neurons_for(responder, {8: "ok"}, port=closed_port())
    no_axon = pl.DataFrame({"uid": [9], "hotkey": [hotkey("no-axon")], "axon_ip": ["0.0.0.0"], "axon_port": [0]},
                           schema_overrides={"uid": pl.UInt16, "axon_port": pl.UInt16})
    responses = query_miners(pl.concat([neurons, dead, no_axon]), challenges, VALIDATOR, timeout_s=1.5,
                             deadline_s=10.0, max_response_bytes=CAP_BYTES)
    validate_frame(responses, RESPONSES)
    rows = by_miner(responses)
    assert sorted(rows) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11]  # uid 9 has no axon: not queried
    assert responses.height == 11 * 3

    ok = rows[0]
    assert ok["status"].to_list() == ["ok"] * 3
    contexts = challenges.sort("query_id")["context"].to_list()
    assert ok["forecast"].to_list() == [[c[-1]] * 6 for c in contexts]  # the signature was accepted
    assert ok["latency_ms"].min() > 0 and ok["payload_bytes"][0] > 0

    assert rows[1]["status"].unique().to_list() == ["timeout"]
    assert rows[1]["forecast"].null_count() == 3
    assert rows[2]["status"].unique().to_list() == ["refused"]
    assert rows[2]["detail"][0] == "HTTP 500: internal failure"
    assert rows[3]["status"].unique().to_list() == ["invalid"]
    assert rows[3]["detail"][0].startswith("body is not JSON")

    huge = rows[4]
    assert huge["status"].unique().to_list() == ["invalid"]
    assert "stopped reading" in huge["detail"][0]
    assert CAP_BYTES < huge["payload_bytes"][0] < HUGE_BODY_BYTES  # abandoned, not read whole

    nan = rows[5]  # NaN is recorded as sent; validate.py rejects it
    assert nan["status"].to_list() == ["ok"] * 3
    assert nan["forecast"][0].is_nan()[0]

    partial = rows[6]
    assert partial["status"].to_list() == ["invalid", "invalid", "ok"]
    assert partial["detail"].to_list() == ["no forecast for this query_id", "values is not a list of numbers", None]

    assert rows[7]["status"].unique().to_list() == ["refused"]
    assert rows[7]["detail"][0] == "HTTP 403: not a miner here"
    assert rows[8]["status"].unique().to_list() == ["error"]
    assert "ConnectError" in rows[8]["detail"][0]
    assert rows[10]["status"].unique().to_list() == ["invalid"]
    assert rows[10]["detail"][0] == (f"declared body of {HUGE_BODY_BYTES} bytes exceeds the {CAP_BYTES}-byte "
                                     f"limit; not read")
    assert rows[10]["payload_bytes"][0] == 0
    assert rows[11]["status"].unique().to_list() == ["timeout"]  # the whole exchange has one clock
    assert rows[11]["detail"][0] == "no complete answer within the 1.5 s timeout"
    assert rows[11]["payload_bytes"][0] > 0


def test_deadline_cancels_stalled_miners_and_returns(responder, challenges):
    kinds = {uid: "slow" for uid in range(40)} | {40: "ok"}
    neurons = neurons_for(responder, kinds)
    started = time.monotonic()
    responses = asyncio.run(query_miners_async(neurons, challenges, VALIDATOR, timeout_s=120.0, deadline_s=1.0,
                                               concurrency=16))
    elapsed_s = time.monotonic() - started
    # Generous bound: only a batch that ignored its deadline would wait for the 120 s per-miner timeout.
    assert elapsed_s < 60
    stalled = responses.filter(pl.col("miner_uid") < 40)
    assert stalled["status"].unique().to_list() == ["timeout"]
    details = stalled.group_by("miner_uid").agg(pl.col("detail").first())["detail"]
    assert details.str.contains("batch deadline").all()
    # 16 slots, taken by the first 16 stalled miners (tasks start in uid order) and never freed
    assert details.str.starts_with("cancelled at the batch deadline").sum() == 16
    assert details.str.starts_with("not queried").sum() == 40 - 16
    assert responses.filter(pl.col("miner_uid") == 40)["status"].unique().to_list() == ["timeout"]


def test_miner_that_refuses_our_signature_is_refused_not_raised(responder, challenges):
    neurons = neurons_for(responder, {0: "ok"})
    stranger = Keypair.create_from_uri("//Mallory")
    responses = query_miners(neurons, challenges, stranger, timeout_s=2.0)
    assert responses["status"].to_list() == ["ok"] * 3  # this responder accepts any valid signature

    class WrongKey:  # signs with another key than it claims: the miner rejects the signature
        ss58_address = VALIDATOR.ss58_address

        def sign(self, message):
            return stranger.sign(message)

    responses = query_miners(neurons, challenges, WrongKey(), timeout_s=2.0)
    assert responses["status"].unique().to_list() == ["refused"]
    assert responses["detail"][0] == "HTTP 401: BadSignature"  # the SDK verifier's verdict


def test_no_miner_with_an_axon_gives_no_rows(challenges):
    neurons = pl.DataFrame({"uid": [0, 1], "hotkey": [hotkey("a"), VALIDATOR.ss58_address],
                            "axon_ip": [None, "127.0.0.1"], "axon_port": [8091, 8091]},
                           schema_overrides={"uid": pl.UInt16, "axon_port": pl.UInt16, "axon_ip": pl.String})
    responses = query_miners(neurons, challenges, VALIDATOR)  # uid 1 is the validator itself: skipped
    assert responses.height == 0 and responses.schema == RESPONSES.polars_schema()
