"""The miner's HTTP server (DESIGN.md §7): answers signed forecasting challenges with a forecaster.

Wire format and status codes: tasks/evaluation/protocol.py; authentication is btauth/1
(tasks/evaluation/btauth.py, the SDK's signed requests). A request passes these checks in order, and the
first that fails decides the answer:

    body size (413; a body still arriving after BODY_TIMEOUT_S: 408) → btauth/1 headers present and well
    formed (400; no hotkey or signature 401) → addressed to this miner (403) → nonce within the freshness
    window (401) → signature under the declared scheme (401) → nonce not seen before (409; 503 when the
    bounded store is full of live nonces) → validator permitted on the subnet (403) → JSON (400) →
    schema (422)

then every challenge is forecast in one batched call per (context length, horizon) and the answer is
{"forecasts": [{"query_id", "values"}]}. No input makes the server crash; request bodies, signatures
and nonces are never logged above DEBUG.

`MinerServer` runs the app with uvicorn in a background thread (tests, the demo's many miners in one
process); `serve_forever` runs it in the foreground (`yumaflow miner serve`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tasks.evaluation import btauth, protocol

log = logging.getLogger(__name__)

MAX_CHALLENGES = 4096  # per request; the body cap bounds it too
MAX_CONTEXT_LEN = 16_384  # values per challenge context
MAX_HORIZON = 1024  # steps per forecast
BODY_TIMEOUT_S = 10.0  # the whole body must arrive within this (a miner-side limit, not in the protocol)
NONCE_STORE_SIZE = 200_000  # live (validator, nonce) pairs remembered; beyond this, new requests get 503



class Refusal(Exception):
    """A request the miner will not answer: HTTP status and a short reason (never request content)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- request checks ------------------------------------------------------------------------------


async def read_body_capped(request: Request, max_body_bytes: int) -> bytes:
    """The body, or Refusal(413) as soon as it is known to exceed the cap, without reading it whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.strip().isascii() and declared.strip().isdigit()):
            raise Refusal(400, "malformed Content-Length")
        if int(declared) > max_body_bytes:
            raise Refusal(413, f"body larger than {max_body_bytes} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():  # a chunked body has no Content-Length: count as it arrives
        received += len(chunk)
        if received > max_body_bytes:
            raise Refusal(413, f"body larger than {max_body_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def request_target(request: Request) -> str:
    """The request target exactly as sent (path and ?query): what a btauth/1 signature covers."""
    path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


def parse_challenges(body: bytes, *, max_context_len: int = MAX_CONTEXT_LEN, max_horizon: int = MAX_HORIZON,
                     max_challenges: int = MAX_CHALLENGES) -> list[tuple[int, np.ndarray, int]]:
    """(query_id, context float64, horizon) per challenge; Refusal(400) for bad JSON, 422 for the schema."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # includes UnicodeDecodeError and over-long integers
        raise Refusal(400, "body is not valid JSON") from None
    if not isinstance(document, dict):
        raise Refusal(422, "body must be a JSON object")
    if "epoch_id" in document and not isinstance(document["epoch_id"], str):
        raise Refusal(422, "epoch_id must be a string")
    challenges = document.get("challenges")
    if not isinstance(challenges, list) or not 1 <= len(challenges) <= max_challenges:
        raise Refusal(422, f"challenges must be a list of 1..{max_challenges} objects")
    parsed: list[tuple[int, np.ndarray, int]] = []
    seen_ids: set[int] = set()
    for position, challenge in enumerate(challenges):
        where = f"challenges[{position}]"
        if not isinstance(challenge, dict):
            raise Refusal(422, f"{where} must be an object")
        query_id, context, horizon = challenge.get("query_id"), challenge.get("context"), challenge.get("horizon")
        if type(query_id) is not int or not 0 <= query_id < 2**63:
            raise Refusal(422, f"{where}.query_id must be a non-negative integer")
        if query_id in seen_ids:
            raise Refusal(422, f"{where}.query_id {query_id} is repeated")
        seen_ids.add(query_id)
        if type(horizon) is not int or not 1 <= horizon <= max_horizon:
            raise Refusal(422, f"{where}.horizon must be an integer in 1..{max_horizon}")
        if not isinstance(context, list) or not 1 <= len(context) <= max_context_len:
            raise Refusal(422, f"{where}.context must be a list of 1..{max_context_len} numbers")
        # type() rather than isinstance: bool is an int subclass, and numpy would also accept "1.5"
        if not all(type(v) is float or type(v) is int for v in context):
            raise Refusal(422, f"{where}.context must hold only numbers")
        try:
            values = np.array(context, dtype=np.float64)
        except OverflowError:
            raise Refusal(422, f"{where}.context holds a number too large for float64") from None
        if not np.isfinite(values).all():
            raise Refusal(422, f"{where}.context holds a non-finite number")
        parsed.append((query_id, values, horizon))
    return parsed


def forecast_batch(forecaster, challenges: list[tuple[int, np.ndarray, int]]) -> list[dict[str, Any]]:
    """Forecast every challenge, one batched call per (context length, horizon) group, in request order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for position, (_, context, horizon) in enumerate(challenges):
        groups.setdefault((context.shape[0], horizon), []).append(position)
    answers: list[dict[str, Any] | None] = [None] * len(challenges)
    for (_, horizon), positions in groups.items():
        contexts = np.stack([challenges[p][1] for p in positions])
        values = np.asarray(forecaster.forecast(contexts, horizon), dtype=np.float64)
        if values.shape != (len(positions), horizon):
            raise ValueError(f"forecaster returned shape {values.shape}, expected {(len(positions), horizon)}")
        if not np.isfinite(values).all():
            raise ValueError("forecaster returned non-finite values")
        for row, p in zip(values.tolist(), positions, strict=True):
            answers[p] = {"query_id": challenges[p][0], "values": row}
    return answers  # type: ignore[return-value]


# -- the app -------------------------------------------------------------------------------------


class MinerApp:
    """The checks and the answer of one miner, as methods a hostile test miner can override."""

    def __init__(self, hotkey, forecaster, permitted_validators: Callable[[], set[str]], *,
                 max_body_bytes: int = protocol.MAX_REQUEST_BYTES, max_context_len: int = MAX_CONTEXT_LEN,
                 max_horizon: int = MAX_HORIZON, nonce_store: btauth.NonceStore | None = None,
                 body_timeout_s: float = BODY_TIMEOUT_S, max_age_s: float = btauth.DEFAULT_MAX_AGE_S,
                 allowed_skew_s: float = btauth.DEFAULT_ALLOWED_SKEW_S, path: str = protocol.FORECAST_PATH):
        self.hotkey = hotkey
        self.hotkey_ss58: str = hotkey.ss58_address
        self.forecaster = forecaster
        self.permitted_validators = permitted_validators
        self.max_body_bytes = max_body_bytes
        self.max_context_len = max_context_len
        self.max_horizon = max_horizon
        self.body_timeout_s = body_timeout_s
        self.max_age_s, self.allowed_skew_s = max_age_s, allowed_skew_s
        self.path = path  # the task plug-in's path (the forecasting task's by default)
        self.nonces = nonce_store if nonce_store is not None else btauth.NonceStore(
            retention_s=2 * (max_age_s + allowed_skew_s), capacity=NONCE_STORE_SIZE)
        self.refusals: dict[int, int] = {}  # status → count, for /health and tests

    async def authenticate(self, request: Request, body: bytes) -> str:
        """The validator hotkey of a genuine, fresh, permitted btauth/1 request; Refusal otherwise."""
        try:
            caller = btauth.verify(request.headers, body, method=request.method, path=request_target(request),
                                   self_hotkey_ss58=self.hotkey_ss58, nonce_store=self.nonces,
                                   max_age_s=self.max_age_s, allowed_skew_s=self.allowed_skew_s)
        except btauth.AuthError as refused:
            raise Refusal(refused.status, str(refused)) from None
        try:
            permitted = self.permitted_validators()
        except Exception as exc:  # an unknown permit set refuses everyone rather than crashing
            log.warning("permitted_validators failed: %s", exc)
            raise Refusal(503, "validator permits unavailable") from None
        if caller.hotkey_ss58 not in permitted:
            raise Refusal(403, "validator hotkey not permitted on this subnet")
        return caller.hotkey_ss58

    async def answer(self, challenges: list[tuple[int, np.ndarray, int]]) -> Response:
        forecaster = getattr(self.forecaster, "current", self.forecaster)  # one model for the whole batch
        try:
            forecasts = await run_in_threadpool(forecast_batch, forecaster, challenges)
        except Exception as exc:
            log.warning("forecaster failed on a batch of %d challenges: %s", len(challenges), exc)
            return JSONResponse({"error": "forecaster failed"}, status_code=500)
        return JSONResponse({"forecasts": forecasts})

    async def forecast_endpoint(self, request: Request) -> Response:
        try:
            try:
                body = await asyncio.wait_for(read_body_capped(request, self.max_body_bytes), self.body_timeout_s)
            except TimeoutError:  # a body trickled in slowly holds a connection: cut it off
                raise Refusal(408, "request body not received in time") from None
            validator = await self.authenticate(request, body)
            challenges = parse_challenges(body, max_context_len=self.max_context_len, max_horizon=self.max_horizon)
        except Refusal as refusal:
            self.refusals[refusal.status] = self.refusals.get(refusal.status, 0) + 1
            log.debug("refused %s: %s", refusal.status, refusal.reason)
            headers = {"Connection": "close"} if refusal.status == 413 else None
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status, headers=headers)
        except ClientDisconnect:
            return Response(status_code=400)
        log.debug("answering %d challenges from %s", len(challenges), validator)
        return await self.answer(challenges)

    async def health_endpoint(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "hotkey": self.hotkey_ss58,
                             "model_version": getattr(self.forecaster, "version", None),
                             "refusals": {str(status): n for status, n in sorted(self.refusals.items())}})

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route(self.path, self.forecast_endpoint, methods=["POST"]),
                                 Route(protocol.HEALTH_PATH, self.health_endpoint, methods=["GET"])])


def create_app(hotkey, forecaster, permitted_validators: Callable[[], set[str]], *,
               max_body_bytes: int = protocol.MAX_REQUEST_BYTES, **limits) -> Starlette:
    """The miner's ASGI app. `hotkey` is this miner's Keypair; `forecaster` a Forecaster or ForecasterHolder."""
    app = MinerApp(hotkey, forecaster, permitted_validators, max_body_bytes=max_body_bytes, **limits)
    asgi = app.asgi()
    asgi.state.miner = app
    return asgi


# -- running it ----------------------------------------------------------------------------------


def _uvicorn_config(app, *, log_level: str, graceful_s: float):
    import uvicorn

    # access logs are off: they would log every validator's address and path at INFO
    return uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                          timeout_graceful_shutdown=graceful_s, server_header=False)


class MinerServer:
    """A miner app served by uvicorn on 127.0.0.1 in a background thread (port 0: any free port).

        with MinerServer(create_app(...)) as miner:
            httpx.post(miner.url + protocol.FORECAST_PATH, ...)
    """

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 graceful_shutdown_s: float = 1.0, start_timeout_s: float = 10.0):
        import uvicorn

        self.app = app
        self.host = host
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
        # without it every response on a kept-alive connection waits ~40 ms for a delayed ACK
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                                     socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))  # bound here, so the port is known before the thread starts
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(app, log_level=log_level, graceful_s=graceful_shutdown_s))
        self._thread: threading.Thread | None = None
        self._start_timeout_s = start_timeout_s

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MinerServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"miner-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"miner server on {self.url} did not start")
            time.sleep(0.005)
        return self

    def request_stop(self) -> None:
        """Ask the server to stop without waiting (uvicorn notices within ~0.1 s); `stop()` waits."""
        self._server.should_exit = True

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._socket.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> MinerServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_servers(servers: list[MinerServer]) -> None:
    """Stop many servers at once: all are asked first, then each is waited for (the demo's miners)."""
    for server in servers:
        server.request_stop()
    for server in servers:
        server.stop()


def serve_forever(hotkey, forecaster, permitted_validators: Callable[[], set[str]], *, host: str = "0.0.0.0",
                  port: int = 8091, max_body_bytes: int = protocol.MAX_REQUEST_BYTES,
                  reload_interval_s: float | None = None, log_level: str = "info",
                  path: str = protocol.FORECAST_PATH) -> None:
    """Serve in the foreground until interrupted (`yumaflow miner serve`).

    With a ForecasterHolder and `reload_interval_s`, the model alias is re-resolved on that interval
    and a new champion is served without a restart.
    """
    import uvicorn

    app = create_app(hotkey, forecaster, permitted_validators, max_body_bytes=max_body_bytes, path=path)
    config = _uvicorn_config(app, log_level=log_level, graceful_s=5.0)
    config.host, config.port = host, port
    if reload_interval_s and hasattr(forecaster, "start_auto_reload"):
        forecaster.start_auto_reload(reload_interval_s)
    log.info("miner %s serving on %s:%d", hotkey.ss58_address, host, port)
    try:
        uvicorn.Server(config).run()
    finally:
        if hasattr(forecaster, "stop"):
            forecaster.stop()


# -- the chain side ------------------------------------------------------------------------------


class ChainPermits:
    """Hotkeys holding a validator permit on `netuid`, re-read from the chain every `refresh_s`.

    Callable: `permits()` is the latest set. The first read happens in the constructor so that a
    wrong netuid or an unreachable chain fails at start-up; later failures keep the previous set.
    """

    def __init__(self, chain_client, netuid: int, refresh_s: float, *, finalized: bool = True):
        self.chain_client = chain_client
        self.netuid = netuid
        self.refresh_s = refresh_s
        self.finalized = finalized
        self.block: int | None = None
        self._hotkeys: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name=f"permits-{netuid}", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        block = self.chain_client.head_block(finalized=self.finalized)
        neurons = self.chain_client.snapshot(self.netuid, block, parts=("neurons",)).neurons
        permitted = neurons.filter(neurons["validator_permit"])["hotkey"].to_list()
        self._hotkeys, self.block = frozenset(permitted), block
        log.info("netuid %d block %d: %d validators hold a permit", self.netuid, block, len(permitted))

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_s):
            try:
                self.refresh()
            except Exception as exc:
                log.warning("refreshing validator permits of netuid %d failed, keeping block %s: %s",
                            self.netuid, self.block, exc)

    def __call__(self) -> set[str]:
        return set(self._hotkeys)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def permits_from_chain(chain_client, netuid: int, refresh_s: float = 60.0, *, finalized: bool = True) -> ChainPermits:
    """permitted_validators for create_app, from the chain's neurons snapshot (validator_permit)."""
    return ChainPermits(chain_client, netuid, refresh_s, finalized=finalized)


def publish_axon(chain_writer, netuid: int, ip: str, port: int, hotkey):
    """Publish this miner's address with ChainWriter.serve_axon; the Submission, or None if unsupported.

    A chain that cannot take the extrinsic (a read-only replay, a writer without serve_axon) is
    reported with a warning rather than stopping the miner: validators configured by hand can still
    reach it.
    """
    chain_name = getattr(chain_writer, "source", type(chain_writer).__name__)
    serve_axon = getattr(chain_writer, "serve_axon", None)
    if serve_axon is None:
        log.warning("chain %s cannot publish axons (no serve_axon); miner %s at %s:%d is not on chain",
                    chain_name, hotkey.ss58_address, ip, port)
        return None
    try:
        submission = serve_axon(netuid, ip, port, hotkey)
    except Exception as exc:  # a read-only replay, a runtime without the call, an unreachable node
        log.warning("serve_axon on chain %s failed (%s: %s); miner %s at %s:%d is not on chain",
                    chain_name, type(exc).__name__, exc, hotkey.ss58_address, ip, port)
        return None
    if not submission.ok:
        log.warning("serve_axon for %s on netuid %d failed: %s", hotkey.ss58_address, netuid, submission.error)
    else:
        log.info("axon %s:%d published for %s on netuid %d at block %s", ip, port, hotkey.ss58_address, netuid,
                 submission.block)
    return submission


__all__ = ["ChainPermits", "MinerApp", "MinerServer", "Refusal", "create_app", "forecast_batch",
           "parse_challenges", "permits_from_chain", "publish_axon", "serve_forever", "stop_servers"]
