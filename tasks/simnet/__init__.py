"""The simulated subnet (DESIGN.md §3): an in-process Subtensor subnet, labelled as a simulation everywhere.

`SimChain` implements the same ChainClient and ChainWriter interface (tasks/chain/interface.py) as the
node-backed client and runs the real consensus engine at each tempo; `scenario` plays the default cast.
It is a package of its own because it is not a node client: tasks/chain/ alone talks to a node.
"""

from tasks.simnet.chain import SimChain, SimRejected, parse_sim_source

__all__ = ["SimChain", "SimRejected", "parse_sim_source"]
