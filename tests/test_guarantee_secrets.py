"""README guarantee 6 (secrets): every CLI command and flow runs with a known test key, then every
place yumaflow writes is scanned for it: the seed, the mnemonic, the private key and the keyfile
password appear nowhere.

The validator's hotkey is a real bittensor keyfile, `$NACL`-encrypted, its password in the BT_PW_…
variable; the miner's is a plain keyfile (as hotkeys usually are). Scanned: stdout and stderr of every
command (including refused ones: wrong password, malformed keyfile, a mnemonic given as --hotkey-uri),
every file the commands wrote (warehouse, MLflow store and artifacts, reports, the simulated chain),
everything the Prefect server holds (flow and task runs with parameters, logs, artifacts, variables)
and the bytes of its database. A positive control shows the scan finds a planted secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from substrateinterface import Keypair

from tasks.chain.wallet import password_env_var
from tests.support.crashkit import BIN
from tests.support.secretscan import Needles, ScanReport, prefect_records

pytestmark = pytest.mark.slow

# Known test keys: never use these anywhere real.
VALIDATOR_MNEMONIC = "minor mercy slush split govern uncle rug inspire this basket defy silent"
MINER_MNEMONIC = "excuse museum kit know average accuse snap beach urban picnic method rifle"
PASSWORD = "yf-test-password tangerine 9113"
NETUID = 1


NACL_SALT = b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1"  # btwallet keyfile.rs NACL_SALT

def keyfile(kp: Keypair) -> bytes:
    """A bittensor-wallet hotkey file's JSON (tests/test_wallet.py keyfile_json)."""
    return json.dumps({"accountId": "0x" + kp.public_key.hex(), "publicKey": "0x" + kp.public_key.hex(),
                       "privateKey": "0x" + kp.private_key.hex(), "ss58Address": kp.ss58_address,
                       "secretPhrase": kp.mnemonic, "secretSeed": "0x" + kp.seed_hex.hex()}).encode()


def nacl_encrypt(data: bytes, password: str) -> bytes:
    from nacl.pwhash import argon2i
    from nacl.secret import SecretBox


    key = argon2i.kdf(SecretBox.KEY_SIZE, password.encode(), NACL_SALT,
                      opslimit=argon2i.OPSLIMIT_SENSITIVE, memlimit=argon2i.MEMLIMIT_SENSITIVE)
    return b"$NACL" + bytes(SecretBox(key).encrypt(data))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_command_or_flow_leaks_the_seed_mnemonic_or_password(tmp_path, cli_env, prefect_api):
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    from tasks.simnet.chain import SimChain

    validator = Keypair.create_from_mnemonic(VALIDATOR_MNEMONIC)
    miner = Keypair.create_from_mnemonic(MINER_MNEMONIC)
    needles = Needles()
    needles.add_key("validator", VALIDATOR_MNEMONIC, bytes(validator.seed_hex), bytes(validator.private_key))
    needles.add_key("miner", MINER_MNEMONIC, bytes(miner.seed_hex), bytes(miner.private_key))
    needles.add_text("keyfile password", PASSWORD)

    # ---- wallets: the encrypted validator key, the plain miner key, and two bad ones
    wallets = tmp_path / "wallets"
    hotkeys = wallets / "w" / "hotkeys"
    hotkeys.mkdir(parents=True)
    (hotkeys / "validator").write_bytes(nacl_encrypt(keyfile(validator), PASSWORD))
    (hotkeys / "miner").write_bytes(keyfile(miner))
    (hotkeys / "truncated").write_bytes(keyfile(validator)[:-40])  # malformed: cut inside its JSON
    (wallets / "w2" / "hotkeys").mkdir(parents=True)
    (wallets / "w2" / "hotkeys" / "validator").write_bytes((hotkeys / "validator").read_bytes())
    env = {**cli_env, password_env_var(hotkeys / "validator"): PASSWORD,
           password_env_var(wallets / "w2" / "hotkeys" / "validator"): "not the password",
           "YUMAFLOW_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'work' / 'mlflow.db'}",
           # Everything logged, ours included, goes to the output and to the Prefect server to be scanned.
           "PREFECT_LOGGING_LEVEL": "DEBUG", "PREFECT_LOGGING_EXTRA_LOGGERS": "yumaflow,tasks,flows,neurons,warehouse",
           # Every flow and task result persisted, into the scanned tree.
           "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
           "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "work" / "prefect-results")}

    # ---- the chain: our validator staked and permitted, our miner serving on 127.0.0.1
    state = tmp_path / "work" / "sim.json"
    port = free_port()
    sim = SimChain.open(f"sim:11@{state}")
    for kp in (validator, miner):
        sim.register(NETUID, kp.ss58_address, Keypair.create_from_uri(f"//{kp.ss58_address[:8]}").ss58_address)
    sim.add_stake(NETUID, validator.ss58_address, 10**18)
    assert sim.serve_axon(NETUID, "127.0.0.1", port, miner).ok
    sim.advance(21)  # an epoch gives the validator its permit; the weights rate limit has passed
    neurons = sim.snapshot(NETUID, sim.head_block(), parts=("neurons",)).neurons
    assert neurons.filter(pl.col("hotkey") == validator.ss58_address)["validator_permit"].item()
    sim.close()

    work = tmp_path / "work"
    wh = work / "wh"
    chain = f"sim:11@{state}"
    common = ["--wallet-path", str(wallets)]
    outputs: dict[str, str] = {}

    def run(name: str, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, cwd=work, timeout=600)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = res.stdout, res.stderr
        assert (res.returncode == 0) == expect_ok, f"{name}: rc {res.returncode}\n{res.stdout}\n{res.stderr}"
        return res

    serving = subprocess.Popen([BIN, "miner", "serve", "--chain", chain, "--netuid", str(NETUID), "--wallet", "w",
                                "--hotkey", "miner", *common, "--model", "baseline:last_value", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, cwd=work, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and serving.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert serving.poll() is None, serving.communicate()
        # The validator queries the miner once (signed), scores it and pushes weights.
        res = run("epoch", "epoch", "--chain", chain, "--netuid", str(NETUID), "--wallet", "w", "--hotkey",
                  "validator", *common, "--warehouse", str(wh), "--push", "--timeout", "5", "--deadline", "8",
                  "--challenges", "4")
        assert "1 miner(s) answered" in res.stdout and "weights: included" in res.stdout, res.stdout
    finally:
        os.killpg(serving.pid, signal.SIGINT)
        try:
            out, err = serving.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serving.pid, signal.SIGKILL)
            out, err = serving.communicate()
    outputs["miner serve stdout"], outputs["miner serve stderr"] = out, err
    assert miner.ss58_address in out

    run("snapshot", "snapshot", "--chain", chain, "--netuid", str(NETUID), "--warehouse", str(wh))
    run("backfill", "backfill", "--chain", chain, "--netuid", str(NETUID), "--start-block", "181", "--end-block",
        "200", "--warehouse", str(wh))
    run("consensus", "consensus", "--netuid", str(NETUID), "--start-block", "182", "--end-block", "200",
        "--warehouse", str(wh))
    run("whatif", "whatif", "--netuid", str(NETUID), "--start-block", "182", "--end-block", "200", "--variant",
        "kappa60:kappa=39321", "--warehouse", str(wh))
    run("report", "report", "--netuid", str(NETUID), "--warehouse", str(wh), "--reports-dir", str(work / "reports"))
    run("train", "train", "--model", "linear", "--max-epochs", "1", "--context", "48", "--horizon", "8")
    run("compare", "compare", "--name", "forecaster", "--refs", "challenger", "--netuid", str(NETUID),
        "--warehouse", str(wh))
    run("config", "config")
    # Refused runs: each fails with a clear message naming the file or variable, never the secret.
    res = run("wrong password", "epoch", "--chain", chain, "--netuid", str(NETUID), "--wallet", "w2", "--hotkey",
              "validator", *common, "--warehouse", str(wh), expect_ok=False)
    assert "wrong password" in res.stderr and "BT_PW_" in res.stderr
    res = run("malformed keyfile", "epoch", "--chain", chain, "--netuid", str(NETUID), "--wallet", "w", "--hotkey",
              "truncated", *common, "--warehouse", str(wh), expect_ok=False)
    assert "is not JSON" in res.stderr
    for command in (["epoch", "--chain", chain], ["miner", "serve", "--chain", chain]):
        res = run(f"{command[0]} mnemonic as --hotkey-uri", *command, "--netuid", str(NETUID), "--hotkey-uri",
                  VALIDATOR_MNEMONIC, "--warehouse", str(wh), expect_ok=False)
        assert "development key path" in res.stderr or "development derivation path" in res.stderr, res.stderr

    # ---- scan
    report = ScanReport()
    for where, text in outputs.items():
        report.check(where, text, needles)
    report.check_tree(tmp_path, needles, skip=(wallets,))
    records = asyncio.run(prefect_records(prefect_api))
    for where, text in records.items():
        report.check(f"prefect {where}", text, needles)
    db = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    for path in db.parent.glob(db.name + "*"):  # the database and its -wal / -shm files
        report.files += 1
        report.check(str(path), path.read_bytes(), needles)
    flow_runs = {json.loads(r)["flow_id"] for w, r in records.items() if w.startswith("flow run")}
    print(f"\nscanned {len(outputs)} command outputs, {report.files} files, {len(records)} Prefect records "
          f"({len(flow_runs)} flows), {report.bytes:,} bytes for {len(needles.labelled)} needles")
    assert report.findings == []
    assert any((work / "prefect-results").iterdir())  # flow and task results were persisted and scanned
    assert report.files > 20 and len(records) > 20 and any(w.startswith("artifact") for w in records)

    # ---- positive control: the same scan finds a secret planted in the scanned tree and in a record
    planted = wh / "neurons" / "leak.txt"
    planted.write_text(f"seed=0x{bytes(validator.seed_hex).hex().upper()}")
    control = ScanReport()
    control.check_tree(tmp_path, needles, skip=(wallets,))
    control.check("prefect record", records[next(iter(records))] + " words: rug inspire this", needles)
    planted.unlink()
    found = dict(control.findings)
    assert set(found) == {str(planted), "prefect record"}
    assert "validator seed hex upper" in found[str(planted)]
    assert found["prefect record"] == ["validator mnemonic words 7-9"]
