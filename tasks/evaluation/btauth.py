"""btauth/1: the network's hotkey-signed HTTP requests (bittensor SDK 11 `bittensor.http_auth`), both sides.

Any HTTP request proves "sent by hotkey X, to hotkey Y, with exactly this body, recently" through six
headers. The signed payload is newline-joined UTF-8:

    btauth/1
    <scheme: sr25519 | ed25519>
    <METHOD, upper case>
    <request target: path and ?query exactly as sent>
    <lower-case hex sha256 of the raw body>
    <nonce: decimal nanoseconds since the epoch>
    <sender ss58>
    <receiver ss58, or - when unbound>

Headers: X-Bittensor-Version "1", X-Bittensor-Hotkey, X-Bittensor-Receiver, X-Bittensor-Nonce,
X-Bittensor-Crypto (only for a scheme other than sr25519), X-Bittensor-Signature (0x-hex). The verifier
checks, in the SDK's order: header shape, receiver binding, freshness (`max_age_s` back, `allowed_skew_s`
ahead), the signature under the declared scheme only, then replay (a bounded seen-nonce store, written
only after the signature verifies). The wire format is exactly the SDK's, so a yumaflow validator
queries any btauth/1 miner and any SDK validator queries a yumaflow miner (tests/test_btauth.py checks
both ways against bittensor 11.3.0 itself). Signatures go through bittensor-core, the SDK's own core.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import bittensor_core

PROTOCOL = "btauth/1"
VERSION = "1"
HEADER_VERSION = "X-Bittensor-Version"
HEADER_HOTKEY = "X-Bittensor-Hotkey"
HEADER_RECEIVER = "X-Bittensor-Receiver"
HEADER_NONCE = "X-Bittensor-Nonce"
HEADER_CRYPTO = "X-Bittensor-Crypto"
HEADER_SIGNATURE = "X-Bittensor-Signature"
DEFAULT_MAX_AGE_S = 10.0
DEFAULT_ALLOWED_SKEW_S = 2.0
NO_RECEIVER = "-"
# bittensor-core's crypto types and their btauth scheme names
SCHEMES = {bittensor_core.CRYPTO_ED25519: "ed25519", bittensor_core.CRYPTO_SR25519: "sr25519"}
CRYPTO_OF_SCHEME = {name: crypto for crypto, name in SCHEMES.items()}
DEFAULT_SCHEME = "sr25519"


class AuthError(Exception):
    """A signed request failed authentication. Messages never echo the signature or the payload, so they
    are safe to return to the (unauthenticated) caller."""

    status = 401


class MalformedAuth(AuthError):
    """A required header is missing or unparseable."""

    status = 400


class MissingAuth(MalformedAuth):
    """No credentials at all: the hotkey or the signature header is missing."""

    status = 401


class WrongReceiver(AuthError):
    """Signed for another receiving hotkey, or for none."""

    status = 403


class StaleRequest(AuthError):
    """The nonce is outside the freshness window."""


class ReplayedRequest(AuthError):
    """This (hotkey, nonce) was already accepted inside the window."""

    status = 409


class BadSignature(AuthError):
    """The signature does not verify against the claimed hotkey."""


@dataclass(frozen=True)
class Caller:
    """The authenticated sender of a verified request."""

    hotkey_ss58: str
    nonce_ns: int
    scheme: str


class NonceStoreFull(AuthError):
    """The seen-nonce store is at capacity with live entries: evicting one would re-open it for replay,
    so the request is refused (try again later)."""

    status = 503


class NonceStore:
    """The miner's seen-nonce store: (hotkey, nonce) pairs accepted in the last `retention_s` seconds,
    at most `capacity` live ones. Entries expire in arrival order; a full store refuses new requests
    (NonceStoreFull) rather than forget a live nonce."""

    def __init__(self, retention_s: float = 60.0, capacity: int = 200_000):
        self.retention_s, self.capacity = retention_s, capacity
        self._seen: OrderedDict[tuple[str, int], float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_store(self, hotkey_ss58: str, nonce_ns: int, now_s: float | None = None) -> bool:
        """True (and remembered) the first time a pair is seen; False for a replay."""
        key, now = (hotkey_ss58, nonce_ns), time.monotonic() if now_s is None else now_s
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            if len(self._seen) >= self.capacity:
                raise NonceStoreFull("nonce store full, retry later")
            self._seen[key] = now + self.retention_s
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def __bool__(self) -> bool:  # an empty store is still a store (`store or NonceStore()` must keep it)
        return True


def build_payload(*, scheme: str, method: str, path: str, body: bytes, nonce_ns: int, sender_ss58: str,
                  receiver_ss58: str | None) -> bytes:
    """The exact bytes that are signed (the normative btauth/1 payload; module docstring)."""
    return "\n".join((PROTOCOL, scheme, method.upper(), path, hashlib.sha256(body).hexdigest(), str(nonce_ns),
                      sender_ss58, receiver_ss58 or NO_RECEIVER)).encode()


def sign(keypair, *, method: str, path: str, body: bytes = b"", receiver_ss58: str | None = None,
         nonce_ns: int | None = None) -> dict[str, str]:
    """The btauth/1 headers for a request signed by `keypair` (a bittensor-core Keypair, or a yumaflow
    wallet Hotkey). `path` is the request target exactly as it will be sent; every request (and every
    retry) signs a fresh nanosecond nonce."""
    keypair = getattr(keypair, "keypair", keypair)
    scheme = SCHEMES.get(int(getattr(keypair, "crypto_type", bittensor_core.CRYPTO_SR25519)))
    if scheme is None:
        raise ValueError(f"btauth/1 signs with sr25519 or ed25519 keys, not crypto type {keypair.crypto_type}")
    nonce = time.time_ns() if nonce_ns is None else int(nonce_ns)
    payload = build_payload(scheme=scheme, method=method, path=path, body=body, nonce_ns=nonce,
                            sender_ss58=keypair.ss58_address, receiver_ss58=receiver_ss58)
    headers = {HEADER_VERSION: VERSION, HEADER_HOTKEY: keypair.ss58_address, HEADER_NONCE: str(nonce),
               HEADER_SIGNATURE: "0x" + bytes(keypair.sign(payload)).hex()}
    if scheme != DEFAULT_SCHEME:
        headers[HEADER_CRYPTO] = scheme
    if receiver_ss58 is not None:
        headers[HEADER_RECEIVER] = receiver_ss58
    return headers


def verify(headers: Mapping[str, str], body: bytes, *, method: str, path: str, self_hotkey_ss58: str,
           nonce_store: NonceStore, max_age_s: float = DEFAULT_MAX_AGE_S,
           allowed_skew_s: float = DEFAULT_ALLOWED_SKEW_S, require_receiver: bool = True,
           now_ns: int | None = None) -> Caller:
    """Authenticate a received request (raw body, method and target as received); the Caller, or an
    AuthError subclass naming what failed (`.status`: the HTTP status to answer)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if lowered.get(HEADER_VERSION.lower()) != VERSION:
        raise MalformedAuth(f"missing or unsupported {HEADER_VERSION} (expected {VERSION!r})")
    sender = lowered.get(HEADER_HOTKEY.lower())
    if not sender:
        raise MissingAuth(f"missing {HEADER_HOTKEY}")
    raw_nonce = lowered.get(HEADER_NONCE.lower())
    if raw_nonce is None:
        raise MalformedAuth(f"missing {HEADER_NONCE}")
    if not (raw_nonce.isascii() and raw_nonce.isdigit()):
        raise MalformedAuth(f"{HEADER_NONCE} is not a decimal integer")
    nonce = int(raw_nonce)
    scheme = lowered.get(HEADER_CRYPTO.lower(), DEFAULT_SCHEME)
    if scheme not in CRYPTO_OF_SCHEME:
        raise MalformedAuth(f"unsupported {HEADER_CRYPTO}")
    raw_signature = lowered.get(HEADER_SIGNATURE.lower())
    if not raw_signature:
        raise MissingAuth(f"missing {HEADER_SIGNATURE}")
    try:
        signature = bytes.fromhex(raw_signature.removeprefix("0x"))
    except ValueError:
        raise MalformedAuth(f"{HEADER_SIGNATURE} is not hex") from None
    receiver = lowered.get(HEADER_RECEIVER.lower())
    if receiver is None:
        if require_receiver:
            raise WrongReceiver(f"missing {HEADER_RECEIVER}: this server requires receiver-bound requests")
    elif receiver != self_hotkey_ss58:
        raise WrongReceiver("request was signed for a different receiving hotkey")
    now = time.time_ns() if now_ns is None else now_ns
    if now - nonce > max_age_s * 1e9:
        raise StaleRequest(f"nonce is older than the {max_age_s:g}s freshness window")
    if nonce - now > allowed_skew_s * 1e9:
        raise StaleRequest(f"nonce is more than {allowed_skew_s:g}s in the future")
    payload = build_payload(scheme=scheme, method=method, path=path, body=body, nonce_ns=nonce,
                            sender_ss58=sender, receiver_ss58=receiver)
    try:
        valid = bittensor_core.verify(payload, signature, sender, CRYPTO_OF_SCHEME[scheme])
    except Exception:  # an undecodable ss58 address or a signature of the wrong length
        raise MalformedAuth("invalid hotkey address or signature encoding") from None
    if not valid:
        raise BadSignature("signature does not verify against the claimed hotkey")
    if nonce_store.retention_s < max_age_s + allowed_skew_s:
        raise ValueError(f"nonce store retains {nonce_store.retention_s:g}s, less than the freshness window "
                         f"{max_age_s + allowed_skew_s:g}s: replays inside the gap would pass")
    if not nonce_store.check_and_store(sender, nonce):
        raise ReplayedRequest("this nonce was already accepted from this hotkey")
    return Caller(hotkey_ss58=sender, nonce_ns=nonce, scheme=scheme)
