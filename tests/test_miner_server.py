"""The miner's HTTP server over real HTTP on 127.0.0.1: answers, every refusal, hostile miners, reload.

Keys are substrate-interface development keys: Alice is a permitted validator, Charlie a hotkey with
no permit, Bob the miner, Dave another miner. Expected forecasts are worked out by hand below.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from substrateinterface import Keypair

from neurons.forecasters import Drift, ForecasterHolder, ForecasterNotFound, LastValue, SeasonalNaive, load_forecaster
from neurons.hostile import BIG_BODY_BYTES, CopierForecaster, create_hostile_app
from neurons.miner import MinerServer, create_app, permits_from_chain, publish_axon, stop_servers
from tasks.evaluation import btauth, protocol

ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")
CHARLIE = Keypair.create_from_uri("//Charlie")
DAVE = Keypair.create_from_uri("//Dave")
MAX_BODY_BYTES = 32 * 1024  # small, so the 413 tests need only small bodies

# seasonal naive with period 3, worked by hand:
#   [1, 2, 3, 4, 5, 6.5], horizon 5  → the last season 4, 5, 6.5 repeated → 4, 5, 6.5, 4, 5
#   [0, 0, 0, 1, 2, 3],   horizon 4  → 1, 2, 3, 1   (same length as the first, another horizon)
#   [10, 20],             horizon 2  → shorter than a period: last value → 20, 20
#   [7, 8, 9, 1, 2, 4],   horizon 5  → 1, 2, 4, 1, 2 (same length and horizon as the first: one batch)
CHALLENGES = [
    {"query_id": 11, "context": [1, 2, 3, 4, 5, 6.5], "horizon": 5},
    {"query_id": 12, "context": [0, 0, 0, 1, 2, 3], "horizon": 4},
    {"query_id": 13, "context": [10.0, 20.0], "horizon": 2},
    {"query_id": 14, "context": [7, 8, 9, 1, 2, 4], "horizon": 5},
]
EXPECTED = [
    {"query_id": 11, "values": [4.0, 5.0, 6.5, 4.0, 5.0]},
    {"query_id": 12, "values": [1.0, 2.0, 3.0, 1.0]},
    {"query_id": 13, "values": [20.0, 20.0]},
    {"query_id": 14, "values": [1.0, 2.0, 4.0, 1.0, 2.0]},
]
HONEST_BODY = json.dumps({"epoch_id": "e1", "challenges": CHALLENGES}).encode()


def permitted() -> set[str]:
    return {ALICE.ss58_address}


@pytest.fixture(scope="module")
def miner():
    app = create_app(BOB, SeasonalNaive(3), permitted, max_body_bytes=MAX_BODY_BYTES)
    with MinerServer(app) as server:
        yield server


def post(server: MinerServer, body: bytes, *, signer=ALICE, miner_hotkey=None, headers=None, **sign) -> httpx.Response:
    signed = protocol.sign_request(body, signer, miner_hotkey or BOB.ss58_address, **sign)
    signed.update(headers or {})
    return httpx.post(server.url + protocol.FORECAST_PATH, content=body, headers=signed, timeout=10)


def assert_still_serving(server: MinerServer) -> None:
    response = post(server, HONEST_BODY)
    assert response.status_code == 200
    assert response.json() == {"forecasts": EXPECTED}


# -- baselines -----------------------------------------------------------------------------------


def test_baselines_by_hand():
    context = np.array([[1.0, 3.0, 5.0], [2.0, 2.0, -4.0]])
    assert LastValue().forecast(context, 2).tolist() == [[5.0, 5.0], [-4.0, -4.0]]
    # drift: slope (last - first) / (n - 1) = 2 and -3 per step
    assert Drift().forecast(context, 3).tolist() == [[7.0, 9.0, 11.0], [-7.0, -10.0, -13.0]]
    assert Drift().forecast(np.array([[4.0]]), 2).tolist() == [[4.0, 4.0]]
    assert SeasonalNaive(2).forecast(context, 3).tolist() == [[3.0, 5.0, 3.0], [2.0, -4.0, 2.0]]
    assert SeasonalNaive(4).forecast(context, 2).tolist() == [[5.0, 5.0], [-4.0, -4.0]]  # shorter than a period


def test_load_forecaster_specs():
    assert load_forecaster("baseline:seasonal_naive:24") == SeasonalNaive(24)
    assert load_forecaster("baseline:last_value") == LastValue()
    assert load_forecaster("baseline:drift") == Drift()
    with pytest.raises(ValueError, match="integer period"):
        load_forecaster("baseline:seasonal_naive")
    with pytest.raises(ValueError, match="unknown baseline 'arima'"):
        load_forecaster("baseline:arima")
    with pytest.raises(ValueError, match="unknown forecaster spec"):
        load_forecaster("onnx:model.onnx")
    with pytest.raises(ValueError, match="models:/NAME@ALIAS"):
        load_forecaster("mlflow:runs:/abc/model")


# -- the honest path -----------------------------------------------------------------------------


def test_signed_request_from_permitted_validator_gets_baseline_forecasts(miner):
    response = post(miner, HONEST_BODY)
    assert response.status_code == 200
    assert response.json() == {"forecasts": EXPECTED}
    health = httpx.get(miner.url + protocol.HEALTH_PATH).json()
    assert health["status"] == "ok" and health["hotkey"] == BOB.ss58_address


# -- refusals, in the order the miner checks them -------------------------------------------------


SIGNATURE, NONCE, HOTKEY = btauth.HEADER_SIGNATURE, btauth.HEADER_NONCE, btauth.HEADER_HOTKEY


def test_bad_signature_401(miner):
    signed = protocol.sign_request(HONEST_BODY, ALICE, BOB.ss58_address)
    flipped = signed[SIGNATURE][:-1] + ("0" if signed[SIGNATURE][-1] != "0" else "1")
    response = post(miner, HONEST_BODY, headers={SIGNATURE: flipped})
    assert response.status_code == 401
    # a signature by another key under Alice's name
    forged = protocol.sign_request(HONEST_BODY, CHARLIE, BOB.ss58_address)[SIGNATURE]
    assert post(miner, HONEST_BODY, headers={SIGNATURE: forged}).status_code == 401
    assert post(miner, HONEST_BODY, headers={SIGNATURE: ""}).status_code == 401
    assert post(miner, HONEST_BODY, headers={SIGNATURE: "0xzz"}).status_code == 400  # not even hex
    assert_still_serving(miner)


def test_signature_of_another_body_401(miner):
    other = json.dumps({"epoch_id": "e1", "challenges": CHALLENGES[:1]}).encode()
    signed = protocol.sign_request(other, ALICE, BOB.ss58_address)
    response = httpx.post(miner.url + protocol.FORECAST_PATH, content=HONEST_BODY, headers=signed)
    assert response.status_code == 401
    assert_still_serving(miner)


def test_stale_or_future_nonce_401(miner):
    now_ns = time.time_ns()
    assert post(miner, HONEST_BODY, nonce_ns=now_ns - int(btauth.DEFAULT_MAX_AGE_S * 2e9)).status_code == 401
    assert post(miner, HONEST_BODY, nonce_ns=now_ns + int(btauth.DEFAULT_ALLOWED_SKEW_S * 2e9)).status_code == 401
    assert_still_serving(miner)


def test_unknown_validator_403(miner):
    response = post(miner, HONEST_BODY, signer=CHARLIE)
    assert response.status_code == 403
    assert "not permitted" in response.json()["error"]
    assert_still_serving(miner)


def test_request_addressed_to_another_miner_403(miner):
    response = post(miner, HONEST_BODY, miner_hotkey=DAVE.ss58_address)
    assert response.status_code == 403
    assert "different receiving hotkey" in response.json()["error"]
    assert_still_serving(miner)


def test_replayed_nonce_409(miner):
    signed = protocol.sign_request(HONEST_BODY, ALICE, BOB.ss58_address)
    first = httpx.post(miner.url + protocol.FORECAST_PATH, content=HONEST_BODY, headers=signed)
    replay = httpx.post(miner.url + protocol.FORECAST_PATH, content=HONEST_BODY, headers=signed)
    assert (first.status_code, replay.status_code) == (200, 409)
    assert_still_serving(miner)


def test_missing_or_malformed_headers_400(miner):
    for name, value in [(NONCE, ""), (NONCE, "xyz"), (NONCE, "²³".encode("latin-1")), (btauth.HEADER_VERSION, "2"),
                        (btauth.HEADER_CRYPTO, "ecdsa"), (HOTKEY, "not-an-address")]:
        assert post(miner, HONEST_BODY, headers={name: value}).status_code == 400, name
    assert_still_serving(miner)


def _raw_request(server: MinerServer, head: bytes, body_chunks: list[bytes] = ()) -> int:
    """Send a request over a plain socket and return the response status."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            sock.sendall(chunk)
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


def test_oversized_body_413_without_reading_it(miner):
    # an honest Content-Length over the cap
    big = json.dumps({"challenges": [{"query_id": 1, "context": [1.0] * 12_000, "horizon": 1}]}).encode()
    assert len(big) > MAX_BODY_BYTES
    assert post(miner, big).status_code == 413
    # a Content-Length of 10 MB with no body ever sent: refused from the header alone
    headers = protocol.sign_request(b"", ALICE, BOB.ss58_address)
    head = (f"POST {protocol.FORECAST_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {10 * 1024 * 1024}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    assert _raw_request(miner, head) == 413
    # a streamed (chunked) body with no Content-Length: counted as it arrives
    head = (f"POST {protocol.FORECAST_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    chunk = b"7" * 8192
    chunks = [b"2000\r\n" + chunk + b"\r\n"] * 5 + [b"0\r\n\r\n"]  # 40 KiB in 8 KiB chunks
    assert _raw_request(miner, head, chunks) == 413
    assert_still_serving(miner)


def test_body_trickling_in_past_the_timeout_408():
    with MinerServer(create_app(BOB, LastValue(), permitted, body_timeout_s=0.3)) as server:
        headers = protocol.sign_request(HONEST_BODY, ALICE, BOB.ss58_address)
        head = (f"POST {protocol.FORECAST_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(HONEST_BODY)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
        assert _raw_request(server, head, [HONEST_BODY[:10]]) == 408  # the rest never comes
        assert post(server, HONEST_BODY).status_code == 200


def test_malformed_json_400_and_schema_violations_422(miner):
    assert post(miner, b'{"challenges": [').status_code == 400
    assert post(miner, b"\xff\xfe not utf-8").status_code == 400
    assert post(miner, b"[" * 10_000 + b"]" * 10_000).status_code == 400  # RecursionError in the parser
    nan_body = b'{"challenges": [{"query_id": 1, "context": [1.0, NaN, 3.0], "horizon": 2}]}'
    assert post(miner, nan_body).status_code == 422
    bad_challenges = [
        {"query_id": 1, "context": [1.0, 1e400], "horizon": 2},  # parses as inf
        {"query_id": 1, "context": [1.0, "2.0"], "horizon": 2},
        {"query_id": 1, "context": [1.0, True], "horizon": 2},
        {"query_id": 1, "context": [1.0, [2.0]], "horizon": 2},
        {"query_id": 1, "context": [], "horizon": 2},
        {"query_id": 1, "context": [1.0], "horizon": 0},
        {"query_id": 1, "context": [1.0], "horizon": 100_000},
        {"query_id": 1.5, "context": [1.0], "horizon": 1},
        {"query_id": -1, "context": [1.0], "horizon": 1},
        {"context": [1.0], "horizon": 1},
        [1, 2, 3],
    ]
    for challenge in bad_challenges:
        body = json.dumps({"challenges": [challenge]}).encode().replace(b"Infinity", b"1e400")
        assert post(miner, body).status_code == 422, challenge
    duplicate = {"challenges": [CHALLENGES[0], CHALLENGES[0]]}
    for document in (duplicate, {"challenges": []}, {"epoch_id": 5, "challenges": CHALLENGES}, [CHALLENGES], 3):
        assert post(miner, json.dumps(document).encode()).status_code == 422, document
    assert_still_serving(miner)


def test_logs_at_info_hold_no_bodies_or_signatures(caplog):
    marker_body = json.dumps({"challenges": [{"query_id": 7, "context": [31415.9265], "horizon": 1}]}).encode()
    app = create_app(BOB, LastValue(), permitted)
    with caplog.at_level(logging.INFO), MinerServer(app, log_level="info") as server:
        signed = protocol.sign_request(marker_body, ALICE, BOB.ss58_address)
        url = server.url + protocol.FORECAST_PATH
        assert httpx.post(url, content=marker_body, headers=signed).status_code == 200
        assert httpx.post(url, content=marker_body, headers=signed).status_code == 409
        assert post(server, marker_body, signer=CHARLIE).status_code == 403
        assert httpx.get(server.url + protocol.HEALTH_PATH).json()["refusals"] == {"403": 1, "409": 1}
    assert "31415" not in caplog.text
    assert signed[SIGNATURE][2:20] not in caplog.text and signed[NONCE] not in caplog.text


class _ShapeBreakingForecaster:
    """A faulty model (not hostile on the wire): one value fewer than asked, NaN on request."""

    def __init__(self, nan: bool):
        self.nan = nan

    def forecast(self, context, horizon):
        if self.nan:
            return np.full((context.shape[0], horizon), np.nan)
        return np.zeros((context.shape[0], horizon - 1))


def test_a_faulty_forecaster_gets_500_and_the_server_keeps_serving():
    for nan in (False, True):
        with MinerServer(create_app(BOB, _ShapeBreakingForecaster(nan), permitted)) as server:
            response = post(server, HONEST_BODY)
            assert response.status_code == 500 and response.json() == {"error": "forecaster failed"}
            assert httpx.get(server.url + protocol.HEALTH_PATH).status_code == 200


def test_the_miners_nonce_store_is_bounded_and_refuses_when_full():
    app = create_app(BOB, LastValue(), permitted, nonce_store=btauth.NonceStore(retention_s=60.0, capacity=2))
    with MinerServer(app) as server:
        assert post(server, HONEST_BODY).status_code == 200
        assert post(server, HONEST_BODY).status_code == 200
        assert post(server, HONEST_BODY).status_code == 503  # full of live nonces: never forget one


def test_an_sdk_validator_is_answered_by_a_yumaflow_miner(miner):
    """bittensor 11.3.0's own http_auth.sign: the wire format of the network's validators."""
    from bittensor import http_auth

    headers = http_auth.sign(ALICE, method="POST", path=protocol.FORECAST_PATH, body=HONEST_BODY,
                             receiver_ss58=BOB.ss58_address)
    response = httpx.post(miner.url + protocol.FORECAST_PATH, content=HONEST_BODY, headers=headers)
    assert response.status_code == 200 and response.json() == {"forecasts": EXPECTED}
    again = httpx.post(miner.url + protocol.FORECAST_PATH, content=HONEST_BODY, headers=headers)
    assert again.status_code == 409


# -- lifecycle ------------------------------------------------------------------------------------


def test_miner_server_stops_cleanly():
    server = MinerServer(create_app(BOB, LastValue(), permitted)).start()
    port, thread_name = server.port, f"miner-{server.port}"
    assert post(server, HONEST_BODY).status_code == 200
    server.stop()
    assert not server.running
    assert thread_name not in {t.name for t in threading.enumerate()}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_many_miners_in_one_process_stop_together():
    miners = [Keypair.create_from_uri(f"//Miner{i}") for i in range(8)]
    servers = [MinerServer(create_app(key, LastValue(), permitted)).start() for key in miners]
    for server, key in zip(servers, miners, strict=True):
        assert post(server, HONEST_BODY, miner_hotkey=key.ss58_address).status_code == 200
    stop_servers(servers)
    assert not any(server.running for server in servers)
    names = {f"miner-{server.port}" for server in servers}
    assert not [t for t in threading.enumerate() if t.name in names]
    for server in servers:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


# -- the chain side ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replay_chain(shared_dir):
    from tasks.chain import open_chain

    chain = open_chain(f"replay:{shared_dir / 'chain' / 'recordings' / 'mainnet-spec343' / 'metagraph.json'}")
    yield chain
    chain.close()


def test_permits_from_chain_are_the_snapshot_validator_permits(replay_chain):
    # the recording holds netuid 1 at block 6,852,690 (the best head it recorded; no finalized head)
    permits = permits_from_chain(replay_chain, 1, refresh_s=3600, finalized=False)
    try:
        neurons = replay_chain.snapshot(1, 6852690, parts=("neurons",)).neurons
        expected = {h for h, p in zip(neurons["hotkey"], neurons["validator_permit"], strict=True) if p}
        assert permits.block == 6852690
        assert permits() == expected
        assert 0 < len(expected) < neurons.height
    finally:
        permits.stop()


def test_publish_axon_on_a_read_only_chain_reports_and_returns_none(replay_chain, caplog):
    with caplog.at_level(logging.WARNING, logger="neurons.miner"):
        assert publish_axon(replay_chain, 1, "127.0.0.1", 8091, BOB) is None
    assert "serve_axon" in caplog.text and BOB.ss58_address in caplog.text
    assert BOB.private_key.hex() not in caplog.text


# -- hostile miners ------------------------------------------------------------------------------


def _hostile(kind: str, **options) -> MinerServer:
    return MinerServer(create_hostile_app(kind, BOB, SeasonalNaive(3), permitted, **options))


def test_hostile_value_miners_send_what_they_claim():
    expected_lengths = [len(e["values"]) for e in EXPECTED]
    with _hostile("nan") as server:
        response = post(server, HONEST_BODY)
        assert response.status_code == 200 and b"NaN" in response.content
        assert all(math.isnan(v) for f in response.json()["forecasts"] for v in f["values"])
        assert post(server, HONEST_BODY, signer=CHARLIE).status_code == 403  # still checks auth
    with _hostile("infinite") as server:
        forecasts = post(server, HONEST_BODY).json()["forecasts"]
        assert all(math.isinf(v) for f in forecasts for v in f["values"])
        assert [len(f["values"]) for f in forecasts] == expected_lengths
    with _hostile("wrong_length") as server:
        forecasts = post(server, HONEST_BODY).json()["forecasts"]
        assert [len(f["values"]) for f in forecasts] == [n - 1 for n in expected_lengths]
    with _hostile("huge") as server:
        forecasts = post(server, HONEST_BODY).json()["forecasts"]
        assert {v for f in forecasts for v in f["values"]} == {1e300}


def test_hostile_body_miners_send_what_they_claim():
    with _hostile("big_body") as server:
        response = post(server, HONEST_BODY)
        assert response.status_code == 200 and "content-length" not in response.headers
        assert len(response.content) == BIG_BODY_BYTES
        assert json.loads(response.content)["forecasts"] == EXPECTED
    with _hostile("invalid_json") as server:
        response = post(server, HONEST_BODY)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)


def test_sleeper_answers_after_the_timeout_and_auth_ignorer_answers_anyone():
    with _hostile("sleeper", delay_s=1.0) as server:
        signed = protocol.sign_request(HONEST_BODY, ALICE, BOB.ss58_address)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + protocol.FORECAST_PATH, content=HONEST_BODY, headers=signed, timeout=0.2)
        assert post(server, HONEST_BODY).json() == {"forecasts": EXPECTED}  # it does answer, eventually
    with _hostile("ignores_auth") as server:
        response = httpx.post(server.url + protocol.FORECAST_PATH, content=HONEST_BODY)  # no headers at all
        assert response.status_code == 200 and response.json() == {"forecasts": EXPECTED}


def test_copier_returns_exactly_the_source_models_forecasts():
    honest_model = Drift()
    with (MinerServer(create_app(BOB, honest_model, permitted)) as honest,
          MinerServer(create_hostile_app("copier", DAVE, honest_model, permitted, delay_s=0.01)) as copier):
        honest_answer = post(honest, HONEST_BODY).json()
        copied_answer = post(copier, HONEST_BODY, miner_hotkey=DAVE.ss58_address).json()
    assert copied_answer == honest_answer
    assert isinstance(CopierForecaster(honest_model).forecast(np.array([[1.0, 2.0]]), 2), np.ndarray)


# -- MLflow models and reload --------------------------------------------------------------------


def _register_linear_model(name: str, bias: float) -> None:
    """A torch Linear(4 → 2) that outputs last value + bias twice, registered as a new version of `name`."""
    import mlflow
    import mlflow.pytorch
    import torch

    linear = torch.nn.Linear(4, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[:, -1] = 1.0
        linear.bias.fill_(bias)
    with mlflow.start_run():
        # a batch of 2 in the example: torch.export would otherwise fix the batch size at 1
        mlflow.pytorch.log_model(linear, name="model", input_example=np.zeros((2, 4), np.float32),
                                 pip_requirements=["torch==2.13.0"], registered_model_name=name)


@pytest.mark.slow
def test_mlflow_forecaster_is_served_and_reload_swaps_the_model(tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # artifacts go under the working directory
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment("miner-test")
        _register_linear_model("tiny-forecaster", bias=0.0)
        _register_linear_model("tiny-forecaster", bias=100.0)
    finally:
        mlflow.set_tracking_uri(previous_uri)  # the miner must find the store through its own tracking_uri
    client = MlflowClient(tracking_uri=uri)
    client.set_registered_model_alias("tiny-forecaster", "champion", "1")

    with pytest.raises(ForecasterNotFound, match="'no-such-model'"):
        load_forecaster("mlflow:models:/no-such-model@champion", tracking_uri=uri)

    holder = ForecasterHolder("mlflow:models:/tiny-forecaster@champion", tracking_uri=uri)
    assert holder.version == "1"
    body = json.dumps({"challenges": [{"query_id": 1, "context": [1, 2, 3, 4, 5], "horizon": 3}]}).encode()
    with MinerServer(create_app(BOB, holder, permitted)) as server:
        # version 1: last value, 2 steps at a time, fed back: 5, 5, then 5 again
        assert post(server, body).json() == {"forecasts": [{"query_id": 1, "values": [5.0, 5.0, 5.0]}]}
        assert holder.reload() is False  # alias unchanged: nothing loaded
        client.set_registered_model_alias("tiny-forecaster", "champion", "2")
        assert holder.reload() is True and holder.version == "2"
        # version 2: last value + 100 twice (105, 105), then 105 + 100 from the fed-back context
        assert post(server, body).json() == {"forecasts": [{"query_id": 1, "values": [105.0, 105.0, 205.0]}]}
        assert httpx.get(server.url + protocol.HEALTH_PATH).json()["model_version"] == "2"
