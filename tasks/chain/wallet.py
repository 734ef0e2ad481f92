"""The validator's hotkey: from a development URI (`//Alice`) or a bittensor wallet hotkey keyfile.

Keys and keyfiles go through bittensor-core (the chain's own Rust core, the one the SDK uses): sr25519
keypairs, the wallet keyfile JSON (secretPhrase, secretSeed or privateKey) and its `$NACL` encryption
(argon2i + secretbox, btwallet's format). Keyfiles live at `<wallet_path>/<wallet_name>/hotkeys/
<hotkey_name>` (chain_interface.md §6.7). The password of an encrypted hotkey comes from the
environment variable bittensor-wallet names after the file path, `BT_PW_<PATH, separators and dots as
_, upper case>`.

A bittensor-core Keypair exposes no secret attribute and its repr shows none. Nothing here logs,
formats or raises with key material: `Hotkey` shows only its ss58 address, and errors name the file and
what is wrong, never its contents or the password.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import bittensor_core
from bittensor_core import Keypair

log = logging.getLogger(__name__)

SS58_FORMAT = 42
DEFAULT_WALLET_PATH = "~/.bittensor/wallets"
NACL_PREFIX = b"$NACL"


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
        keypair = Keypair.create_from_uri(uri)
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
    if not passwords:
        raise WalletError(f"keyfile {path} is encrypted ($NACL); set {password_env_var(path)} to its password")
    for password in passwords:
        try:
            return bytes(bittensor_core.decrypt_keyfile_data(data, password))
        except bittensor_core.WrongPasswordError:
            continue
        except Exception:
            raise WalletError(f"keyfile {path}: its $NACL encryption cannot be read") from None
    raise WalletError(f"keyfile {path}: wrong password in {password_env_var(path)} (NaCl decryption failed)")


def keypair_from_keyfile_data(data: bytes, path: Path) -> Keypair:
    """The sr25519 Keypair in a (decrypted) keyfile's JSON, read by bittensor-core with bittensor-wallet's
    precedence: secretPhrase, then secretSeed, then privateKey."""
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise WalletError(f"keyfile {path} is not JSON (nor $NACL-encrypted); it cannot be read") from None
    if not isinstance(fields, dict):
        raise WalletError(f"keyfile {path}: expected a JSON object")
    if not any(fields.get(k) for k in ("secretPhrase", "secretSeed", "privateKey")):
        raise WalletError(f"keyfile {path} holds no secret (secretPhrase, secretSeed or privateKey); "
                          f"a public-only file cannot sign")
    if fields.get("privateKey") and not (fields.get("secretPhrase") or fields.get("secretSeed")) \
            and not (fields.get("publicKey") or fields.get("accountId")):
        raise WalletError(f"keyfile {path}: privateKey without publicKey")
    try:
        keypair = bittensor_core.deserialize_keypair_from_keyfile_data(bytes(data))
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
