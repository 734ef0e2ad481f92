"""The validator's evaluation tables (DESIGN.md §4, §7): challenges, answers, scores, submissions."""

import pyarrow as pa

from schemas.table import Table, register


def _f(name, type_, nullable=False):
    return pa.field(name, type_, nullable=nullable)


CHALLENGES = register(Table(
    name="challenges",
    grain="one challenge of an epoch: a context window, its horizon and the held-back truth",
    key=("epoch_id", "query_id"),
    schema=pa.schema([
        _f("epoch_id", pa.string()), _f("query_id", pa.uint32()), _f("netuid", pa.uint16()),
        _f("block", pa.uint64()), _f("series_id", pa.string()), _f("seed", pa.uint64()),
        _f("context", pa.list_(pa.float64())), _f("horizon", pa.uint16()),
        _f("truth", pa.list_(pa.float64()), True),  # null until the truth arrives (delayed-truth tasks)
        _f("task", pa.string(), True),              # the task plug-in (null: rows written before plug-ins)
        _f("truth_block", pa.uint64(), True),       # the block the truth arrives at; null: known at once
    ]),
))

RESPONSES = register(Table(
    name="responses",
    grain="one miner's answer to one challenge, with its status, latency and size",
    key=("epoch_id", "miner_uid", "query_id"),
    schema=pa.schema([
        _f("epoch_id", pa.string()), _f("miner_uid", pa.uint16()), _f("query_id", pa.uint32()),
        _f("hotkey", pa.string()),
        _f("status", pa.string()),  # ok | timeout | refused | invalid | error
        _f("latency_ms", pa.float64(), True), _f("payload_bytes", pa.uint64()),
        _f("forecast", pa.list_(pa.float64()), True), _f("detail", pa.string(), True),
    ]),
))

SCORES = register(Table(
    name="scores",
    grain="one miner's score in an epoch: the batch score and the EMA-smoothed score",
    key=("epoch_id", "miner_uid"),
    schema=pa.schema([
        _f("epoch_id", pa.string()), _f("netuid", pa.uint16()), _f("block", pa.uint64()),
        _f("miner_uid", pa.uint16()), _f("hotkey", pa.string()),
        _f("batch_score", pa.float64()), _f("smoothed_score", pa.float64()),
    ]),
))

WEIGHT_SUBMISSIONS = register(Table(
    name="weight_submissions",
    grain="one attempt to set weights: what we computed, what we sent, and the outcome",
    key=("netuid", "block", "validator_hotkey"),
    schema=pa.schema([
        _f("netuid", pa.uint16()), _f("block", pa.uint64()), _f("validator_hotkey", pa.string()),
        _f("epoch_id", pa.string()),
        _f("uids", pa.list_(pa.uint16())), _f("weights", pa.list_(pa.uint16())),
        _f("version_key", pa.uint64()), _f("dry_run", pa.bool_()),
        _f("projected_validator_trust", pa.uint16(), True), _f("projected_dividends", pa.uint16(), True),
        _f("status", pa.string()),  # dry_run | included | committed | failed | refused
        _f("extrinsic_hash", pa.string(), True), _f("included_block", pa.uint64(), True),
        _f("detail", pa.string(), True),
        # Commit-reveal subnets: how the row was sent and what became of it.
        _f("method", pa.string(), True),            # set_weights | commit_timelocked | commit_hash
        _f("reveal_round", pa.uint64(), True),      # drand round of a timelocked commit
        _f("reveal_block", pa.uint64(), True),      # first block a hash commit can be revealed in
        _f("salt", pa.list_(pa.uint16()), True),    # a hash commit's salt (public once revealed)
        _f("reveal_status", pa.string(), True),     # pending | revealed | missed | failed
        _f("revealed_block", pa.uint64(), True),    # the block from which the chain held the revealed row
        _f("chain_weights", pa.list_(pa.uint16()), True),  # what the chain held for us after the reveal
    ]),
))
