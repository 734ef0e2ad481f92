"""btauth/1 interop, both ways, with the real SDK (bittensor 11.3.0, `bittensor.http_auth`): yumaflow's
signed requests verify with the SDK's verifier; requests signed by the SDK verify with yumaflow's; a
tampered body, another receiver, a stale or a replayed nonce are refused by each side as by the other.
"""

from __future__ import annotations

import time

import bittensor_core
import pytest
from bittensor import http_auth as sdk

from tasks.evaluation import btauth

VALIDATOR = bittensor_core.Keypair.create_from_uri("//Alice")
MINER = bittensor_core.Keypair.create_from_uri("//Bob")
BODY = b'{"challenges": [[1.0, 2.0, 3.0]], "horizon": 4}'
PATH = "/forecast?v=1"


def ours_verify(headers, body=BODY, *, receiver=MINER.ss58_address, store=None, **kw):
    return btauth.verify(headers, body, method="POST", path=PATH, self_hotkey_ss58=receiver,
                         nonce_store=btauth.NonceStore() if store is None else store, **kw)


def sdk_verify(headers, body=BODY, *, receiver=MINER.ss58_address, store=None, **kw):
    return sdk.verify(headers, body, method="POST", path=PATH, self_hotkey_ss58=receiver,
                      nonce_store=sdk.InMemoryNonceStore() if store is None else store, **kw)


def test_the_signed_payload_is_the_sdks_byte_for_byte():
    common = dict(method="post", path=PATH, body=BODY, nonce_ns=1_733_300_000_123_456_789,
                  sender_ss58=VALIDATOR.ss58_address, receiver_ss58=MINER.ss58_address)
    assert btauth.build_payload(scheme="sr25519", **common) == sdk.build_payload(scheme="sr25519", **common)
    unbound = {**common, "receiver_ss58": None}
    assert btauth.build_payload(scheme="ed25519", **unbound) == sdk.build_payload(scheme="ed25519", **unbound)
    assert btauth.build_payload(scheme="sr25519", **common).split(b"\n")[0] == b"btauth/1"


def test_yumaflow_signs_and_the_sdk_verifies():
    headers = btauth.sign(VALIDATOR, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address)
    assert set(headers) == {sdk.HEADER_VERSION, sdk.HEADER_HOTKEY, sdk.HEADER_NONCE, sdk.HEADER_SIGNATURE,
                            sdk.HEADER_RECEIVER}
    caller = sdk_verify(headers)
    assert caller.hotkey_ss58 == VALIDATOR.ss58_address and caller.nonce_ns == int(headers[sdk.HEADER_NONCE])


def test_the_sdk_signs_and_yumaflow_verifies():
    headers = sdk.sign(VALIDATOR, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address)
    caller = ours_verify(headers)
    assert (caller.hotkey_ss58, caller.scheme) == (VALIDATOR.ss58_address, "sr25519")


def test_ed25519_keys_interoperate_and_name_their_scheme():
    key = bittensor_core.Keypair.create_from_uri("//Charlie", bittensor_core.CRYPTO_ED25519)
    ours = btauth.sign(key, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address)
    theirs = sdk.sign(key, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address)
    assert ours[btauth.HEADER_CRYPTO] == theirs[sdk.HEADER_CRYPTO] == "ed25519"
    assert sdk_verify(ours).hotkey_ss58 == ours_verify(theirs).hotkey_ss58 == key.ss58_address


def _both_refuse(headers, body=BODY, *, receiver=MINER.ss58_address, now_ns=None):
    """(our error, the SDK's error) for the same request; each must refuse it."""
    with pytest.raises(btauth.AuthError) as ours:
        ours_verify(headers, body, receiver=receiver, now_ns=now_ns)
    with pytest.raises(sdk.AuthError) as theirs:
        sdk_verify(headers, body, receiver=receiver, now_ns=now_ns)
    return type(ours.value).__name__, type(theirs.value).__name__


@pytest.mark.parametrize("signer", ["yumaflow", "sdk"])
def test_a_tampered_body_is_refused_by_both(signer):
    sign = btauth.sign if signer == "yumaflow" else sdk.sign
    headers = sign(VALIDATOR, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address)
    assert _both_refuse(headers, BODY.replace(b"4", b"5")) == ("BadSignature", "BadSignature")


@pytest.mark.parametrize("signer", ["yumaflow", "sdk"])
def test_another_receiver_is_refused_by_both(signer):
    sign = btauth.sign if signer == "yumaflow" else sdk.sign
    other = bittensor_core.Keypair.create_from_uri("//Dave").ss58_address
    headers = sign(VALIDATOR, method="POST", path=PATH, body=BODY, receiver_ss58=other)
    assert _both_refuse(headers) == ("WrongReceiver", "WrongReceiver")
    unbound = sign(VALIDATOR, method="POST", path=PATH, body=BODY)
    assert _both_refuse(unbound) == ("WrongReceiver", "WrongReceiver")


@pytest.mark.parametrize("signer", ["yumaflow", "sdk"])
@pytest.mark.parametrize("age_s", [-3.0, 11.0])
def test_a_stale_or_future_nonce_is_refused_by_both(signer, age_s):
    sign = btauth.sign if signer == "yumaflow" else sdk.sign
    nonce = time.time_ns() - int(age_s * 1e9)
    headers = sign(VALIDATOR, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address,
                   nonce_ns=nonce)
    assert _both_refuse(headers) == ("StaleRequest", "StaleRequest")


@pytest.mark.parametrize("signer", ["yumaflow", "sdk"])
def test_a_replayed_nonce_is_refused_by_both(signer):
    sign = btauth.sign if signer == "yumaflow" else sdk.sign
    headers = sign(VALIDATOR, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address)
    ours, theirs = btauth.NonceStore(), sdk.InMemoryNonceStore()
    ours_verify(headers, store=ours)
    sdk_verify(headers, store=theirs)
    with pytest.raises(btauth.ReplayedRequest):
        ours_verify(headers, store=ours)
    with pytest.raises(sdk.ReplayedRequest):
        sdk_verify(headers, store=theirs)


def test_malformed_headers_are_refused_by_both_and_never_echoed():
    headers = btauth.sign(VALIDATOR, method="POST", path=PATH, body=BODY, receiver_ss58=MINER.ss58_address)
    for broken, ours_expected in (
            ({**headers, btauth.HEADER_NONCE: "12ab"}, "MalformedAuth"),
            ({**headers, btauth.HEADER_SIGNATURE: "0xzz"}, "MalformedAuth"),
            ({k: v for k, v in headers.items() if k != btauth.HEADER_HOTKEY}, "MissingAuth"),  # answered 401
            ({**headers, btauth.HEADER_VERSION: "2"}, "MalformedAuth"),
            ({**headers, btauth.HEADER_CRYPTO: "ecdsa"}, "MalformedAuth")):
        ours, theirs = _both_refuse(broken)
        assert (ours, theirs) == (ours_expected, "MalformedAuth"), broken
        assert issubclass(getattr(btauth, ours), btauth.MalformedAuth)  # the SDK's class, or a refinement
    with pytest.raises(btauth.AuthError) as err:
        ours_verify({**headers, btauth.HEADER_SIGNATURE: headers[btauth.HEADER_SIGNATURE][:-2] + "00"})
    assert headers[btauth.HEADER_SIGNATURE][2:20] not in str(err.value)


def test_the_nonce_store_is_bounded_and_never_forgets_a_live_nonce():
    store = btauth.NonceStore(retention_s=60.0, capacity=1000)
    for nonce in range(1000):
        assert store.check_and_store("5Grw", nonce, now_s=0.0)
    assert not store.check_and_store("5Grw", 3, now_s=1.0)  # a replay inside the window
    with pytest.raises(btauth.NonceStoreFull):  # full of live nonces: refuse, never evict one
        store.check_and_store("5Grw", 5000, now_s=1.0)
    assert store.check_and_store("5Grw", 5000, now_s=60.0)  # once the first entries expired
    assert len(store) == 1 and store.check_and_store("5Grw", 3, now_s=61.0)
