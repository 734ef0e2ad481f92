"""The load guarantee's 256 miners (tests/test_guarantee_load.py), hosted in a process of their own.

    python -m tests.support.load_miners

Starts one real uvicorn miner server per uid on 127.0.0.1 — 191 honest seasonal-naive miners, 64 stallers
(uids ≡ 0 mod 4: 56 sleep far past the timeout, 8 trickle one byte every 100 ms forever) and one miner that
streams an endless body — prints one JSON line `[[uid, hotkey, port], …]`, then serves until its stdin
closes, and stops every server. In their own process the servers do not share the validator's GIL, so the
test measures the validator's deadline and memory, not 256 servers competing with it in one interpreter.
"""

from __future__ import annotations

import asyncio
import json
import sys

from substrateinterface import Keypair

from neurons.forecasters import SeasonalNaive
from neurons.hostile import create_hostile_app
from neurons.miner import MinerServer, create_app, stop_servers

MINERS = 256
TIMEOUT_S = 2.0
ENDLESS_UID = 1
VALIDATOR = Keypair.create_from_uri("//Alice")


def kind_of(uid: int) -> str:
    if uid == ENDLESS_UID:
        return "endless"
    if uid % 4 == 0:
        return "trickle" if uid % 32 == 0 else "sleeper"
    return "honest"


def endless_body_app(chunk: bytes = b"9" * 65536):
    """A miner that answers 200 and streams digits forever (no Content-Length): only a cap stops it."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"forecasts": [', "more_body": True})
        while True:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)

    return app


def trickle_app():
    """A miner that starts an answer and then sends one byte every 100 ms, never finishing."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b" ", "more_body": True})
            await asyncio.sleep(0.1)

    return app


class BiasedSeasonalNaive(SeasonalNaive):
    def __init__(self, period: int, bias: float):
        super().__init__(period)
        self.bias = bias

    def forecast(self, context, horizon):
        return super().forecast(context, horizon) + self.bias


def main() -> int:
    permitted = frozenset({VALIDATOR.ss58_address})
    servers, rows = [], []
    try:
        for uid in range(MINERS):
            key = Keypair.create_from_uri(f"//Alice//loadminer{uid}")
            kind = kind_of(uid)
            if kind == "honest":  # a bias of its own, so no two miners answer alike (no copiers)
                app = create_app(key, BiasedSeasonalNaive(24, bias=uid / 1000), lambda: set(permitted))
            elif kind == "sleeper":
                app = create_hostile_app("sleeper", key, SeasonalNaive(24), lambda: set(permitted),
                                         delay_s=TIMEOUT_S + 60)
            else:
                app = endless_body_app() if kind == "endless" else trickle_app()
            servers.append(MinerServer(app, graceful_shutdown_s=0.2, log_level="critical").start())
            rows.append([uid, key.ss58_address, servers[-1].port])
        print(json.dumps(rows), flush=True)
        sys.stdin.read()  # serve until the test closes our stdin (or dies: EOF too)
    finally:
        stop_servers(servers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
