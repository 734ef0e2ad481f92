"""Errors of chain access. Each names what was asked (method, params, block) and what went wrong."""

from __future__ import annotations

from substrateinterface.exceptions import SubstrateRequestException


class ChainError(Exception):
    """Base of every error raised by tasks.chain."""


class ChainDecodeError(ChainError):
    """Bytes from the chain did not decode to the layout we expected for this block's runtime."""

    def __init__(self, method: str, block: object, what: str):
        self.method, self.block, self.what = method, block, what
        super().__init__(f"cannot decode {method} at block {block}: {what}")


class RecordingMissError(ChainError):
    """A replayed session asked for a JSON-RPC request that the recording does not hold."""

    def __init__(self, method: str, params: object, source: str):
        self.method, self.params = method, params
        super().__init__(f"request not recorded in {source}: method {method!r} with params {params!r}")


class ChainRpcError(ChainError, SubstrateRequestException):
    """The node (or the recording) answered a JSON-RPC request with an error object.

    Also a SubstrateRequestException, so substrate-interface's own error handling sees what it would
    see from a real websocket.
    """

    def __init__(self, method: str, params: object, error: object):
        self.method, self.params, self.error = method, params, error
        super().__init__(f"JSON-RPC error for {method!r} with params {params!r}: {error!r}")


class ChainConnectionError(ChainError, ConnectionError):
    """The connection to the node failed (closed, reset, timed out) during a request; names the node.

    A ConnectionError, so retry policies that retry transport failures (flows/ingest.py) retry it.
    """

    def __init__(self, endpoint: str, method: str, cause: BaseException):
        self.endpoint, self.method, self.cause = endpoint, method, cause
        super().__init__(f"connection to {endpoint} failed during {method!r}: {type(cause).__name__}: {cause}")


class CommitRevealUnavailable(ChainError):
    """The subnet requires commit-reveal and this client cannot commit; names what is missing.

    Weights are never sent another way instead (chain_interface.md §6.4).
    """


class RuntimeMismatch(ChainError):
    """The runtime's own metadata says it lacks, or has retyped, something yumaflow needs.

    Names the runtime API / storage item / call, the runtime's spec version and the field.
    """

    def __init__(self, what: str, spec_version: int, problem: str):
        self.what, self.spec_version, self.problem = what, spec_version, problem
        super().__init__(f"{what} at runtime spec {spec_version}: {problem}")
