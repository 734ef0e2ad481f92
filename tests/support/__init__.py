"""Test support that runs real external parts: a local Subtensor runtime under Chopsticks.

`localchain` starts and stops the chain (../shared/local_chain.md §3.1); `seed_subnet` writes a small
subnet onto it through real sudo and signed extrinsics (§3.4–3.5). LOCALCHAIN_NOTES.md records the
spec-218 type layouts a chain client needs.
"""
