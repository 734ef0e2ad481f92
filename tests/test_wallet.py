"""Hotkeys from dev URIs and bittensor wallet keyfiles; secrets never shown, raised or logged.

Keyfiles are written here in the bittensor-wallet format (chain_interface.md §6.7; opentensor/btwallet
src/keyfile.rs: JSON fields, `$NACL` + 24-byte nonce + secretbox under argon2i "sensitive" with the
fixed salt, and `BT_PW_<path>` holding the password XOR-ed with the variable's name).
"""

from __future__ import annotations

import json
import logging
import pickle
import traceback

import pytest
from nacl.pwhash import argon2i
from nacl.secret import SecretBox
from substrateinterface import Keypair

from tasks.chain.wallet import (
    Hotkey,
    WalletError,
    hotkey_from_keyfile,
    hotkey_from_uri,
    hotkey_path,
    load_hotkey,
    password_env_var,
)

NACL_SALT = b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1"  # btwallet keyfile.rs NACL_SALT
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"  # //Alice, the well-known dev address
PASSWORD = "correct horse battery staple 42"


@pytest.fixture(scope="module")
def keypair() -> Keypair:
    return Keypair.create_from_mnemonic(Keypair.generate_mnemonic())


def keyfile_json(kp: Keypair, *, phrase=True, seed=True) -> dict:
    data = {"accountId": "0x" + kp.public_key.hex(), "publicKey": "0x" + kp.public_key.hex(),
            "privateKey": "0x" + kp.private_key.hex(), "ss58Address": kp.ss58_address}
    if phrase:
        data["secretPhrase"] = kp.mnemonic
    if seed:
        data["secretSeed"] = "0x" + kp.seed_hex.hex()  # the 32-byte mini secret
    return data


def secrets_of(kp: Keypair) -> list[str]:
    return [kp.mnemonic, kp.seed_hex.hex(), kp.private_key.hex(), kp.private_key.hex()[:16], PASSWORD]


def write_wallet(root, kp, name="val", hotkey="default", content: bytes | None = None):
    path = root / name / "hotkeys" / hotkey
    path.parent.mkdir(parents=True)
    path.write_bytes(content if content is not None else json.dumps(keyfile_json(kp)).encode())
    path.chmod(0o600)
    return path


def nacl_encrypt(data: bytes, password: str) -> bytes:
    key = argon2i.kdf(SecretBox.KEY_SIZE, password.encode(), NACL_SALT,
                      opslimit=argon2i.OPSLIMIT_SENSITIVE, memlimit=argon2i.MEMLIMIT_SENSITIVE)
    encrypted = SecretBox(key).encrypt(data)  # nonce (24 bytes) + MAC + ciphertext
    return b"$NACL" + bytes(encrypted)


def masked(password: str, env_name: str) -> str:
    """How bittensor-wallet stores a password in BT_PW_… (btwallet `encrypt_password`)."""
    return "".join(chr(ord(c) ^ ord(env_name[i % len(env_name)])) for i, c in enumerate(password))


def test_dev_uri_gives_the_well_known_address():
    hotkey = hotkey_from_uri("//Alice")
    assert hotkey.ss58_address == ALICE
    assert repr(hotkey) == str(hotkey) == f"Hotkey({ALICE})"
    signature = hotkey.sign(b"payload")
    assert hotkey.keypair.verify(b"payload", signature)


def test_uri_that_is_not_a_dev_path_is_refused_without_echoing_it():
    phrase = Keypair.generate_mnemonic()
    with pytest.raises(WalletError) as err:
        hotkey_from_uri(phrase)
    assert phrase not in str(err.value) and phrase.split()[0] not in str(err.value)


@pytest.mark.parametrize("fields", ["all", "private_key_only", "seed_only"])
def test_unencrypted_keyfile_loads_the_same_key(tmp_path, keypair, fields):
    data = keyfile_json(keypair, phrase=fields == "all", seed=fields != "private_key_only")
    if fields == "seed_only":
        del data["privateKey"]
    write_wallet(tmp_path, keypair, content=json.dumps(data).encode())
    hotkey = load_hotkey(wallet_name="val", hotkey_name="default", wallet_path=tmp_path)
    assert hotkey.ss58_address == keypair.ss58_address
    assert hotkey.source == str(hotkey_path("val", "default", tmp_path))
    assert keypair.verify(b"x", hotkey.sign(b"x"))  # signs with the same secret


def test_wallet_path_comes_from_bt_wallet_path(tmp_path, keypair, monkeypatch):
    write_wallet(tmp_path, keypair, name="w", hotkey="h1")
    monkeypatch.setenv("BT_WALLET_PATH", str(tmp_path))
    assert load_hotkey(wallet_name="w", hotkey_name="h1").ss58_address == keypair.ss58_address


def test_exactly_one_source_is_required():
    with pytest.raises(WalletError, match="either a hotkey URI"):
        load_hotkey()
    with pytest.raises(WalletError, match="either a hotkey URI"):
        load_hotkey(hotkey_uri="//Alice", wallet_name="val")


def test_missing_and_public_only_keyfiles_are_named(tmp_path, keypair):
    with pytest.raises(WalletError, match="not found"):
        load_hotkey(wallet_name="nobody", wallet_path=tmp_path)
    path = write_wallet(tmp_path, keypair, content=json.dumps({"ss58Address": keypair.ss58_address}).encode())
    with pytest.raises(WalletError, match="holds no secret"):
        hotkey_from_keyfile(path)


def test_encrypted_keyfile_without_password_names_the_variable(tmp_path, keypair, monkeypatch):
    path = write_wallet(tmp_path, keypair, content=b"$NACL" + bytes(24) + b"not decrypted without a password")
    name = password_env_var(path)
    monkeypatch.delenv(name, raising=False)
    with pytest.raises(WalletError, match=f"set {name}"):
        hotkey_from_keyfile(path)
    assert name.startswith("BT_PW_") and name.endswith("_VAL_HOTKEYS_DEFAULT")


@pytest.mark.slow  # argon2i with libsodium's "sensitive" limits: ~3 s and 512 MiB per derivation
def test_nacl_encrypted_keyfile_with_the_wallet_password_variable(tmp_path, keypair, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    path = write_wallet(tmp_path, keypair,
                        content=nacl_encrypt(json.dumps(keyfile_json(keypair)).encode(), PASSWORD))
    name = password_env_var(path)
    monkeypatch.setenv(name, masked(PASSWORD, name))  # as bittensor-wallet saves it
    hotkey = hotkey_from_keyfile(path)
    assert hotkey.ss58_address == keypair.ss58_address
    monkeypatch.setenv(name, "wrong password")
    with pytest.raises(WalletError, match="wrong password") as err:
        hotkey_from_keyfile(path)
    shown = [repr(hotkey), str(hotkey), str(err.value), "".join(traceback.format_exception(err.value)),
             caplog.text, " ".join(str(r.__dict__) for r in caplog.records)]
    for secret in secrets_of(keypair):
        assert not any(secret in text for text in shown), "a secret leaked"


def test_secrets_never_appear_in_repr_errors_or_logs(tmp_path, keypair, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, substrate-interface included
    good = write_wallet(tmp_path, keypair, name="good")
    hotkey = hotkey_from_keyfile(good)
    errors = []
    bad_documents = {
        "broken_json": json.dumps(keyfile_json(keypair))[:-3].encode(),  # truncated, secrets inside
        "wrong_address": json.dumps({**keyfile_json(keypair), "ss58Address": ALICE}).encode(),
        "bad_phrase": json.dumps({**keyfile_json(keypair), "secretPhrase": keypair.mnemonic + " extra"}).encode(),
    }
    for name, content in bad_documents.items():
        path = write_wallet(tmp_path, keypair, name=name, content=content)
        with pytest.raises(WalletError) as err:
            hotkey_from_keyfile(path)
        errors.append(err.value)
    shown = [repr(hotkey), str(hotkey), f"{hotkey!r} {hotkey}", caplog.text,
             " ".join(str(r.__dict__) for r in caplog.records)]
    shown += [str(e) for e in errors] + [repr(e) for e in errors]
    shown += ["".join(traceback.format_exception(e)) for e in errors]
    for secret in secrets_of(keypair):
        assert not any(secret in text for text in shown), "a secret leaked"
    assert any(keypair.ss58_address in text for text in shown[:2])
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(hotkey)
    assert isinstance(hotkey, Hotkey) and not hasattr(hotkey, "__dict__")
