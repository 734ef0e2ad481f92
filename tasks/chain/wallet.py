"""The validator's hotkey: from a development URI (`//Alice`) or a bittensor wallet hotkey keyfile.

Keyfiles follow bittensor-wallet (chain_interface.md §6.7): `<wallet_path>/<wallet_name>/hotkeys/
<hotkey_name>`, JSON with accountId, publicKey, privateKey (the 64-byte expanded sr25519 secret),
ss58Address, and secretPhrase / secretSeed when made from a mnemonic. Hotkeys are usually stored
unencrypted; an encrypted file starts with `$NACL` followed by a 24-byte nonce and a NaCl secretbox,
keyed by argon2i (libsodium "sensitive" limits) of the password with bittensor-wallet's fixed salt
(opentensor/btwallet src/keyfile.rs `derive_key`). The password comes from the environment variable
bittensor-wallet names after the file path, `BT_PW_<PATH, separators and dots as _, upper case>`.

Nothing here logs, formats or raises with key material: `Hotkey` shows only its ss58 address, and
errors name the file and what is wrong, never its contents or the password.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from substrateinterface import Keypair, KeypairType

log = logging.getLogger(__name__)

SS58_FORMAT = 42
DEFAULT_WALLET_PATH = "~/.bittensor/wallets"
NACL_PREFIX = b"$NACL"
# bittensor-wallet's fixed argon2 salt (btwallet src/keyfile.rs NACL_SALT); not a secret.
NACL_SALT = b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1"
_NONCE_BYTES = 24


class WalletError(Exception):
    """A hotkey could not be loaded. The message names the file or URI kind, never key material."""


class Hotkey:
    """A signing hotkey. Only the ss58 address is ever shown; use `.keypair` to sign."""

    __slots__ = ("_keypair", "source")

    def __init__(self, keypair: Keypair, source: str):
        self._keypair = keypair
        self.source = source  # "uri" or the keyfile path: where it came from, not what it holds

    @property
    def keypair(self) -> Keypair:
        return self._keypair

    @property
    def ss58_address(self) -> str:
        return self._keypair.ss58_address

    @property
    def public_key(self) -> bytes:
        return self._keypair.public_key

    def sign(self, data: bytes | str) -> bytes:
        return self._keypair.sign(data)

    def __repr__(self) -> str:
        return f"Hotkey({self.ss58_address})"

    __str__ = __repr__

    def __reduce__(self):  # pickling would write the secret somewhere we do not control
        raise TypeError("Hotkey cannot be pickled (it holds a private key)")


def hotkey_from_uri(uri: str) -> Hotkey:
    """A development key such as `//Alice` or `//Alice//validator0//hotkey` (sr25519)."""
    if not uri.startswith("//"):
        # A mnemonic or seed on the command line would end up in shell history and process lists.
        raise WalletError("hotkey URI must be a development derivation path starting with '//' "
                          "(e.g. //Alice); use a wallet keyfile for real keys")
    try:
        keypair = Keypair.create_from_uri(uri, ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519)
    except Exception:
        raise WalletError("hotkey URI could not be derived (not a valid //path)") from None
    log.debug("hotkey loaded from a development URI", extra={"ss58_address": keypair.ss58_address})
    return Hotkey(keypair, "uri")


def hotkey_path(wallet_name: str, hotkey_name: str, wallet_path: str | os.PathLike | None = None) -> Path:
    """`<wallet_path>/<wallet_name>/hotkeys/<hotkey_name>`; wallet_path defaults to $BT_WALLET_PATH
    or ~/.bittensor/wallets."""
    base = wallet_path or os.environ.get("BT_WALLET_PATH") or DEFAULT_WALLET_PATH
    return Path(base).expanduser() / wallet_name / "hotkeys" / hotkey_name


def password_env_var(path: str | os.PathLike) -> str:
    """bittensor-wallet's variable for a keyfile's password: BT_PW_ + the path, `/` and `.` as `_`."""
    return "BT_PW_" + str(path).replace(os.sep, "_").replace(".", "_").upper()


def _env_password(path: Path) -> list[str]:
    """Candidate passwords from the environment, for the expanded path and the ~ form.

    bittensor-wallet stores the value XOR-ed with the variable name (btwallet `decrypt_password`);
    a value set by hand is the plain password. Both readings are tried.
    """
    names = [password_env_var(path)]
    home = str(Path.home())
    if str(path).startswith(home + os.sep):
        names.append(password_env_var("~" + str(path)[len(home):]))
    for name in names:
        value = os.environ.get(name)
        if value:
            unmasked = "".join(chr(ord(c) ^ ord(name[i % len(name)])) for i, c in enumerate(value))
            return [unmasked, value]
    return []


def _decrypt_nacl(data: bytes, path: Path, passwords: list[str]) -> bytes:
    try:
        from nacl.exceptions import CryptoError
        from nacl.pwhash import argon2i
        from nacl.secret import SecretBox
    except ImportError:  # pragma: no cover - pynacl is a dependency
        raise WalletError(f"keyfile {path} is encrypted ($NACL) and PyNaCl (argon2i, secretbox) is not "
                          f"installed; install pynacl or store the hotkey unencrypted") from None
    if not passwords:
        raise WalletError(f"keyfile {path} is encrypted ($NACL); set {password_env_var(path)} to its password")
    body = data[len(NACL_PREFIX):]
    nonce, ciphertext = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
    for password in passwords:
        key = argon2i.kdf(SecretBox.KEY_SIZE, password.encode(), NACL_SALT,
                          opslimit=argon2i.OPSLIMIT_SENSITIVE, memlimit=argon2i.MEMLIMIT_SENSITIVE)
        try:
            return SecretBox(key).decrypt(ciphertext, nonce)
        except CryptoError:
            continue
    raise WalletError(f"keyfile {path}: wrong password in {password_env_var(path)} (NaCl decryption failed)")


def keypair_from_keyfile_data(data: bytes, path: Path) -> Keypair:
    """The sr25519 Keypair in a (decrypted) keyfile's JSON; the same precedence as bittensor-wallet:
    secretPhrase, then secretSeed, then privateKey."""
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise WalletError(f"keyfile {path} is not JSON (nor $NACL-encrypted); it cannot be read") from None
    if not isinstance(fields, dict):
        raise WalletError(f"keyfile {path}: expected a JSON object")
    try:
        if fields.get("secretPhrase"):
            keypair = Keypair.create_from_mnemonic(fields["secretPhrase"], ss58_format=SS58_FORMAT)
        elif fields.get("secretSeed"):
            keypair = Keypair.create_from_seed(fields["secretSeed"], ss58_format=SS58_FORMAT)
        elif fields.get("privateKey"):
            public = fields.get("publicKey") or fields.get("accountId")
            if not public:
                raise WalletError(f"keyfile {path}: privateKey without publicKey")
            keypair = Keypair(public_key=public, private_key=fields["privateKey"], ss58_format=SS58_FORMAT,
                              crypto_type=KeypairType.SR25519)
        else:
            raise WalletError(f"keyfile {path} holds no secret (secretPhrase, secretSeed or privateKey); "
                              f"a public-only file cannot sign")
    except WalletError:
        raise
    except Exception:
        raise WalletError(f"keyfile {path}: its secret fields do not make a valid sr25519 key") from None
    declared = fields.get("ss58Address")
    if declared and declared != keypair.ss58_address:
        raise WalletError(f"keyfile {path}: its key derives {keypair.ss58_address}, the file says {declared}")
    return keypair


def hotkey_from_keyfile(path: str | os.PathLike) -> Hotkey:
    """Load a bittensor hotkey file (plain JSON or $NACL-encrypted)."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WalletError(f"hotkey keyfile {path} not found") from None
    except OSError as e:
        raise WalletError(f"hotkey keyfile {path} cannot be read: {e.strerror}") from None
    if data.startswith(NACL_PREFIX):
        data = _decrypt_nacl(data, path, _env_password(path))
    elif data.startswith((b"$ANSIBLE_VAULT", b"gAAAAA")):
        raise WalletError(f"keyfile {path} uses a legacy encryption (ansible vault / fernet); re-encrypt it "
                          f"with a current bittensor wallet (NaCl) or store the hotkey unencrypted")
    keypair = keypair_from_keyfile_data(data, path)
    log.debug("hotkey loaded from keyfile", extra={"keyfile": str(path), "ss58_address": keypair.ss58_address})
    return Hotkey(keypair, str(path))


def load_hotkey(*, hotkey_uri: str | None = None, wallet_name: str | None = None, hotkey_name: str = "default",
                wallet_path: str | os.PathLike | None = None) -> Hotkey:
    """`--hotkey-uri //Alice` or `--wallet NAME --hotkey NAME [--wallet-path DIR]`, exactly one of them."""
    if (hotkey_uri is None) == (wallet_name is None):
        raise WalletError("give either a hotkey URI (development keys) or a wallet name, not both or neither")
    if hotkey_uri is not None:
        return hotkey_from_uri(hotkey_uri)
    return hotkey_from_keyfile(hotkey_path(wallet_name, hotkey_name, wallet_path))
