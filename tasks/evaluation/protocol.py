"""The validator ↔ miner wire protocol of the forecasting task (DESIGN.md §7): HTTP/JSON, signed with btauth/1.

A validator POSTs a batch of challenges to a miner's axon at `FORECAST_PATH`, signed with btauth/1, the
network's hotkey-signed requests (tasks/evaluation/btauth.py; bittensor SDK 11 `http_auth`): the body's
sha256, a nanosecond nonce, the method and target, and BOTH hotkeys are signed, so a request cannot be
replayed, altered or sent to another miner. Any btauth/1 validator can query a yumaflow miner and a
yumaflow validator any btauth/1 miner. The miner answers only validators registered on the subnet
with a permit.

Request body (JSON):   {"epoch_id": str, "challenges": [{"query_id": int, "context": [float, ...],
                                                          "horizon": int}, ...]}
Request headers:       btauth/1: X-Bittensor-Version, -Hotkey, -Receiver (the miner), -Nonce,
                       -Signature (and -Crypto for ed25519 keys)
Response body (JSON):  {"forecasts": [{"query_id": int, "values": [float, ...]}, ...]}
Refusals:              400 malformed request or auth headers, 401 missing or bad signature, or a stale
                       nonce, 403 hotkey not a permitted validator (or a request for another miner),
                       409 replayed nonce, 413 body too large, 422 body not the schema above,
                       503 nonce store full
"""

from __future__ import annotations

from tasks.evaluation import btauth

FORECAST_PATH = "/forecast"
HEALTH_PATH = "/health"
MAX_REQUEST_BYTES = 2 * 1024 * 1024


def sign_request(body: bytes, keypair, miner_hotkey: str, *, nonce_ns: int | None = None,
                 path: str = FORECAST_PATH) -> dict[str, str]:
    """The btauth/1 headers of a challenge batch `body` POSTed by `keypair` to the miner `miner_hotkey` at
    `path` (a task plug-in's path; the forecasting task's by default)."""
    return btauth.sign(keypair, method="POST", path=path, body=body, receiver_ss58=miner_hotkey, nonce_ns=nonce_ns)
