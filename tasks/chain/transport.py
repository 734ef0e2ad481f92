"""Record and replay at the JSON-RPC layer, under an unchanged substrate-interface 1.8.1.

substrate-interface 1.8.1 sends every request through `SubstrateInterface.transport.rpc_request(payload,
result_handler)` (substrateinterface/transport/base.py); we swap that object. The recording format is
the project's (DESIGN.md §6): one JSON object `{method: {json.dumps(params): response}}`, where the
params key "*" matches any params (used for `state_getMetadata`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from substrateinterface.exceptions import SubstrateRequestException
from substrateinterface.transport.base import TransportBase
from websocket import WebSocketException

from tasks.chain.errors import ChainConnectionError, ChainRpcError, RecordingMissError

ANY_PARAMS = "*"


def params_key(params) -> str:
    return json.dumps(params)


def load_recording(path: str | os.PathLike) -> dict[str, dict[str, dict]]:
    """A recording file, or every `*.json` in a directory merged.

    When two files answer the same request differently (e.g. `chain_getBlockHash []` at different
    times), the request is marked ambiguous: replaying it raises an error naming both files rather
    than silently picking one. `rpc_methods` lists are united instead.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no recording at {path} (expected a recording file or a directory of them)")
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no recording (*.json) found at {path}")
    merged: dict[str, dict[str, dict]] = {}
    origin: dict[tuple[str, str], str] = {}
    for file in files:
        with open(file) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"recording {file}: expected a JSON object {{method: {{params: response}}}}")
        for method, answers in data.items():
            slot = merged.setdefault(method, {})
            for key, response in answers.items():
                if method == "rpc_methods" and key in slot and "ambiguous" not in slot[key]:
                    # Files recorded against different nodes list different methods: the merged
                    # replay behaves as one node offering every method any of them offered.
                    methods = set(slot[key]["result"]["methods"]) | set(response["result"]["methods"])
                    slot[key] = {"result": {"methods": sorted(methods)}}
                elif key in slot and _result(slot[key]) != _result(response):
                    slot[key] = {"ambiguous": [origin[(method, key)], file.name]}
                elif key not in slot:
                    slot[key] = response
                    origin[(method, key)] = file.name
    return merged


def _result(response: dict):
    return {k: v for k, v in response.items() if k not in ("id", "jsonrpc")}


METADATA_V15_FILE = "metadata_v15.hex"  # the runtime's V15 metadata, beside a recording (DESIGN.md §6)
METADATA_V15_CALL = "Metadata_metadata_at_version"


class ReplayTransport(TransportBase):
    """Answers JSON-RPC requests from a recording; an unrecorded request is a RecordingMissError.

    A `metadata_v15.hex` file beside the recording (the hex answer of `state_call
    Metadata_metadata_at_version 0x0f000000`, as ../shared/chain/recordings/ keep it) answers that
    call at any block, as the recording's `state_getMetadata "*"` answers the V14 request.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = str(path)
        self.recording = load_recording(path)
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        v15 = folder / METADATA_V15_FILE
        if v15.is_file() and not any(json.loads(k)[0] == METADATA_V15_CALL
                                     for k in self.recording.get("state_call", {}) if k != ANY_PARAMS):
            self.metadata_v15 = v15.read_text().strip()
        else:
            self.metadata_v15 = None

    def rpc_request(self, payload, result_handler=None):
        method, params = payload["method"], payload["params"]
        if result_handler is not None:
            raise RecordingMissError(method, params, f"{self.path} (subscriptions cannot be replayed)")
        if self.metadata_v15 and method == "state_call" and params and params[0] == METADATA_V15_CALL:
            return {"jsonrpc": "2.0", "id": payload["id"], "result": self.metadata_v15}
        answers = self.recording.get(method, {})
        response = answers.get(params_key(params), answers.get(ANY_PARAMS))
        if response is None:
            raise RecordingMissError(method, params, self.path)
        if "ambiguous" in response:
            raise RecordingMissError(method, params, f"{self.path}: answered differently by files "
                                                     f"{' and '.join(response['ambiguous'])}")
        if "error" in response:
            raise ChainRpcError(method, params, response["error"])
        return {"jsonrpc": "2.0", "id": payload["id"], **_result(response)}


class RecordingTransport(TransportBase):
    """Wraps another transport and keeps every request/response (errors included) for `save()`."""

    def __init__(self, inner: TransportBase, path: str | os.PathLike):
        super().__init__()
        self.inner, self.path = inner, Path(path)
        self.recorded: dict[str, dict[str, dict]] = {}

    def rpc_request(self, payload, result_handler=None):
        method, params = payload["method"], payload["params"]
        try:
            response = self.inner.rpc_request(payload, result_handler=result_handler)
        except SubstrateRequestException as e:
            error = e.error if isinstance(e, ChainRpcError) else (e.args[0] if e.args else str(e))
            self.recorded.setdefault(method, {})[params_key(params)] = {"error": error}
            raise
        if result_handler is None:
            self.recorded.setdefault(method, {})[params_key(params)] = _result(response)
        return response

    def save(self) -> Path:
        """Write the recording (atomically: a temp file renamed over the target)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.recorded, f)
        os.replace(tmp, self.path)
        return self.path

    def close(self):
        self.save()
        self.inner.close()


class ReconnectingTransport(TransportBase):
    """substrate-interface's websocket transport, with transport failures named and a new connection after.

    A closed, reset or timed-out websocket raises ChainConnectionError naming the node and the method
    (substrate-interface would raise websocket-client's bare exception, and parts of it turn that into
    other errors). The next request opens a fresh connection: answers still in flight on the old one
    (a late reply after a timeout) are never read, so a reply can only be matched to its own request.
    """

    def __init__(self, inner, endpoint: str):
        super().__init__()
        self.inner, self.endpoint = inner, endpoint
        self.broken = False

    def rpc_request(self, payload, result_handler=None):
        try:
            if self.broken:
                self.inner.close()
                self.inner.connect()
                self.broken = False
            return self.inner.rpc_request(payload, result_handler=result_handler)
        except (WebSocketException, OSError) as err:  # OSError: resets, refusals, socket timeouts
            self.broken = True
            raise ChainConnectionError(self.endpoint, payload["method"], err) from err

    def close(self):
        self.inner.close()
