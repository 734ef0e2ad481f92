"""ADVERSARIAL TEST MINERS — for tests and the demo only; never run one on a real subnet.

DESIGN.md §7: miners are untrusted, any answer may be late, malformed, NaN, huge or copied. Each
behaviour here is a real HTTP miner (a `MinerApp` subclass, served with `MinerServer`) or a forecaster
wrapper for the honest app, so a validator meets it over the wire exactly as it would in the wild.
Unless its behaviour says otherwise, a hostile miner checks the validator's signature like an honest
one, so what the validator sees is the bad answer, not a refusal.

    kind             what the validator receives
    nan              200, valid shape, every value the JSON literal NaN
    infinite         200, valid shape, every value Infinity / -Infinity
    wrong_length     200, every forecast one value short (one long when horizon is 1)
    huge             200, finite but absurd values (1e300)
    big_body         200, a ~10 MB JSON body streamed without Content-Length (real forecasts + padding)
    invalid_json     200, Content-Type application/json, a truncated JSON document
    sleeper          the honest answer after `delay_s` seconds (longer than the validator's timeout)
    ignores_auth     the honest answer to ANY request: no signature, permit, nonce or address check
    copier           (a forecaster, `CopierForecaster`) exactly another miner's model output, a bit later
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from neurons.miner import MinerApp, forecast_batch
from tasks.evaluation import btauth

BIG_BODY_BYTES = 10 * 1024 * 1024


class HostileMiner(MinerApp):
    """Base of the adversarial test miners: honest checks, honest forecasts, then `tamper`."""

    kind = "honest"

    async def honest_forecasts(self, challenges) -> list[dict]:
        forecaster = getattr(self.forecaster, "current", self.forecaster)
        return await run_in_threadpool(forecast_batch, forecaster, challenges)

    def tamper(self, forecasts: list[dict]) -> list[dict]:
        return forecasts

    async def answer(self, challenges) -> Response:
        forecasts = self.tamper(await self.honest_forecasts(challenges))
        # allow_nan: the point of some of these miners is to put NaN / Infinity literals on the wire
        return Response(json.dumps({"forecasts": forecasts}, allow_nan=True), media_type="application/json")


class NanMiner(HostileMiner):
    kind = "nan"

    def tamper(self, forecasts):
        return [{"query_id": f["query_id"], "values": [float("nan")] * len(f["values"])} for f in forecasts]


class InfiniteMiner(HostileMiner):
    kind = "infinite"

    def tamper(self, forecasts):
        return [{"query_id": f["query_id"], "values": [float("inf") if i % 2 == 0 else float("-inf")
                                                       for i in range(len(f["values"]))]} for f in forecasts]


class WrongLengthMiner(HostileMiner):
    kind = "wrong_length"

    def tamper(self, forecasts):
        return [{"query_id": f["query_id"],
                 "values": f["values"][:-1] if len(f["values"]) > 1 else f["values"] * 2} for f in forecasts]


class HugeMiner(HostileMiner):
    kind = "huge"

    def tamper(self, forecasts):
        return [{"query_id": f["query_id"], "values": [1e300] * len(f["values"])} for f in forecasts]


class BigBodyMiner(HostileMiner):
    """Real forecasts padded to `body_bytes`, streamed in 64 KiB chunks (no Content-Length to trust)."""

    kind = "big_body"

    def __init__(self, *args, body_bytes: int = BIG_BODY_BYTES, **kwargs):
        super().__init__(*args, **kwargs)
        self.body_bytes = body_bytes

    async def answer(self, challenges) -> Response:
        head = json.dumps({"forecasts": await self.honest_forecasts(challenges)})[:-1] + ', "padding": "'
        padding_bytes = max(0, self.body_bytes - len(head) - 2)

        async def chunks():
            yield head.encode()
            chunk = b"x" * 65536
            for _ in range(padding_bytes // len(chunk)):
                yield chunk
            yield b"x" * (padding_bytes % len(chunk)) + b'"}'

        return StreamingResponse(chunks(), media_type="application/json")


class InvalidJsonMiner(HostileMiner):
    kind = "invalid_json"

    async def answer(self, challenges) -> Response:
        text = json.dumps({"forecasts": await self.honest_forecasts(challenges)})
        return Response(text[: max(1, len(text) // 2)], media_type="application/json")


class SleeperMiner(HostileMiner):
    """The honest answer, after `delay_s` (asyncio sleep: the server keeps serving others meanwhile)."""

    kind = "sleeper"

    def __init__(self, *args, delay_s: float = 5.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s

    async def answer(self, challenges) -> Response:
        await asyncio.sleep(self.delay_s)
        return JSONResponse({"forecasts": await self.honest_forecasts(challenges)})


class AuthIgnoringMiner(HostileMiner):
    """Answers anyone: no header, address, timestamp, signature, permit or nonce check (body cap kept)."""

    kind = "ignores_auth"

    async def authenticate(self, request: Request, body: bytes) -> str:
        return request.headers.get(btauth.HEADER_HOTKEY, "")


class CopierForecaster:
    """A forecaster that returns exactly what `source` (another miner's model) returns, `delay_s` later.

    It stands for a miner that copies an honest miner's answers: it cannot re-sign the validator's
    request to forward it, so it runs the same model instead, and answers a little later.
    """

    kind = "copier"

    def __init__(self, source, delay_s: float = 0.05):
        self.source = source
        self.delay_s = delay_s

    def forecast(self, context: np.ndarray, horizon: int) -> np.ndarray:
        values = getattr(self.source, "current", self.source).forecast(context, horizon)
        time.sleep(self.delay_s)  # runs in the server's thread pool, not on its event loop
        return values


HOSTILE_MINERS: dict[str, type[HostileMiner]] = {
    cls.kind: cls for cls in (NanMiner, InfiniteMiner, WrongLengthMiner, HugeMiner, BigBodyMiner, InvalidJsonMiner,
                              SleeperMiner, AuthIgnoringMiner)
}


def create_hostile_app(kind: str, hotkey, forecaster, permitted_validators, **options):
    """The ASGI app of an adversarial test miner of `kind` (see the module docstring).

    `copier` gives the honest app around a CopierForecaster of `forecaster` (option `delay_s`).
    """
    from neurons.miner import create_app

    if kind == "copier":
        return create_app(hotkey, CopierForecaster(forecaster, **options), permitted_validators)
    if kind not in HOSTILE_MINERS:
        raise ValueError(f"unknown hostile miner kind {kind!r}; known: {', '.join([*HOSTILE_MINERS, 'copier'])}")
    app = HOSTILE_MINERS[kind](hotkey, forecaster, permitted_validators, **options)
    asgi = app.asgi()
    asgi.state.miner = app
    return asgi
