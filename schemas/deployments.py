"""Which model version a miner served (DESIGN.md §1 miner, §8 `compare`): the link between the MLflow
registry and the chain's incentive, so a version can be judged by what the network paid for it."""

import pyarrow as pa

from schemas.table import Table, register

MODEL_DEPLOYMENTS = register(Table(
    name="model_deployments",
    grain="one miner hotkey starting to serve one registered model version at a block (until its next row)",
    key=("netuid", "hotkey", "block"),
    schema=pa.schema([
        pa.field("netuid", pa.uint16(), nullable=False),
        pa.field("hotkey", pa.string(), nullable=False),  # ss58 of the miner that served it
        pa.field("block", pa.uint64(), nullable=False),  # first block it served this version
        pa.field("model_name", pa.string(), nullable=False),  # MLflow registered model name
        pa.field("model_version", pa.uint32(), nullable=False),  # MLflow registry version number
    ]),
))
