"""The demo's parts: its cast on the simulated subnet (cast.py) and its models (models.py)."""
