"""Offline checks of the push path: the row guards, and signing compatibility with mainnet's runtime.

The signed push itself runs against a real runtime in tests/test_weights_push_local.py.
"""

from __future__ import annotations

import pytest

from tasks.chain import open_chain
from tasks.chain.interface import ChainWriter
from tasks.chain.substrate import SIGNABLE_EXTENSIONS
from tasks.weights.convert import WeightsRefused
from tasks.weights.push import check_row


@pytest.mark.parametrize("uids, weights, reason", [
    ([], [], "empty row"),
    ([1, 2], [5], "2 uids but 1 weights"),
    ([2, 1], [5, 5], "strictly ascending"),
    ([1, 1], [5, 5], "strictly ascending"),
    ([1, 2], [0, 0], "all weights are zero"),
    ([1, 2], [5, 70000], "must be u16"),
])
def test_rows_that_must_not_be_sent(uids, weights, reason):
    with pytest.raises(WeightsRefused, match=reason):
        check_row(uids, weights)


def test_a_valid_row_passes():
    check_row([0, 3, 7], [65535, 1, 0])  # a zero inside a row is allowed; the chain stores it


def test_mainnet_spec_343_extensions_are_signable_by_substrate_interface(shared_dir):
    """chain_interface.md §6.6: every extension beyond substrate-interface's fixed list is zero-sized at
    spec 343 (recorded mainnet metadata), so 1.8.1 signs correctly; `submit` refuses otherwise."""
    chain = open_chain(f"replay:{shared_dir / 'chain' / 'recordings' / 'mainnet-spec343' / 'metagraph.json'}")
    try:
        assert isinstance(chain, ChainWriter)
        chain.pin(6852690)
        extensions = set(chain.substrate.metadata.get_signed_extensions())
        assert extensions - SIGNABLE_EXTENSIONS == {"CheckNonZeroSender", "CheckWeight",
                                                    "SubtensorTransactionExtension", "DrandPriority"}
        assert chain.extensions_carrying_data() == []
    finally:
        chain.close()
