"""The validator ↔ miner wire protocol of the forecasting task (DESIGN.md §7): HTTP/JSON, signed.

A validator POSTs a batch of challenges to a miner's axon at `FORECAST_PATH`. The request is signed
by the validator's hotkey (sr25519) over `signing_message(...)`, which binds the body (its sha256),
a fresh nonce, a timestamp and BOTH hotkeys, so a signed request cannot be replayed to another miner
or later. The miner answers only validators registered on the subnet with a permit.

Request body (JSON):   {"epoch_id": str, "challenges": [{"query_id": int, "context": [float, ...],
                                                          "horizon": int}, ...]}
Request headers:       X-Validator-Hotkey (ss58), X-Miner-Hotkey (ss58), X-Nonce (32 hex chars),
                       X-Timestamp-Ms (int), X-Signature (0x + 128 hex chars)
Response body (JSON):  {"forecasts": [{"query_id": int, "values": [float, ...]}, ...]}
Refusals:              400 malformed request, 401 bad/missing signature or stale timestamp,
                       403 hotkey not a permitted validator (or request for another miner),
                       409 replayed nonce, 413 body too large, 422 body not the schema above
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

FORECAST_PATH = "/forecast"
HEALTH_PATH = "/health"
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_CLOCK_SKEW_MS = 60_000  # a request older or further in the future than this is stale

H_VALIDATOR = "X-Validator-Hotkey"
H_MINER = "X-Miner-Hotkey"
H_NONCE = "X-Nonce"
H_TIMESTAMP = "X-Timestamp-Ms"
H_SIGNATURE = "X-Signature"


def signing_message(body: bytes, nonce: str, timestamp_ms: int, validator_hotkey: str, miner_hotkey: str) -> bytes:
    """The exact bytes a validator signs and a miner verifies."""
    digest = hashlib.sha256(body).hexdigest()
    return f"yumaflow/forecast/v1|{validator_hotkey}|{miner_hotkey}|{nonce}|{timestamp_ms}|{digest}".encode()


@dataclass(frozen=True)
class SignedHeaders:
    validator_hotkey: str
    miner_hotkey: str
    nonce: str
    timestamp_ms: int
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {H_VALIDATOR: self.validator_hotkey, H_MINER: self.miner_hotkey, H_NONCE: self.nonce,
                H_TIMESTAMP: str(self.timestamp_ms), H_SIGNATURE: self.signature}


def sign_request(body: bytes, keypair, miner_hotkey: str, *, now_ms: int | None = None,
                 nonce: str | None = None) -> SignedHeaders:
    """Headers for `body` sent by `keypair` (a substrate-interface sr25519 Keypair) to `miner_hotkey`."""
    nonce = nonce or secrets.token_hex(16)
    ts = int(time.time() * 1000) if now_ms is None else now_ms
    message = signing_message(body, nonce, ts, keypair.ss58_address, miner_hotkey)
    return SignedHeaders(keypair.ss58_address, miner_hotkey, nonce, ts, "0x" + keypair.sign(message).hex())


def verify_signature(body: bytes, headers: SignedHeaders) -> bool:
    """True when `headers.signature` is the validator hotkey's sr25519 signature of this request."""
    from substrateinterface import Keypair

    try:
        signer = Keypair(ss58_address=headers.validator_hotkey, ss58_format=42)
        signature = bytes.fromhex(headers.signature.removeprefix("0x"))
    except (ValueError, TypeError):
        return False
    if len(signature) != 64:
        return False
    message = signing_message(body, headers.nonce, headers.timestamp_ms, headers.validator_hotkey,
                              headers.miner_hotkey)
    try:
        return bool(signer.verify(message, signature))
    except Exception:  # a malformed key or signature is a failed verification, never a crash
        return False
