"""The demo's models in MLflow: an incumbent champion on a first run, a fresh challenger every run.

The incumbent is deliberately modest (a linear model, one epoch on little data) so that the run's
challenger (an MLP trained longer) has something to beat; the comparison flow, not the demo, decides.
"""

from __future__ import annotations

from tasks.training.compare import CHAMPION, mlflow_client

INCUMBENT = {"model": "linear", "max_epochs": 1, "n_series": 8, "series_length": 512}
CHALLENGER = {"model": "mlp", "max_epochs": 4, "n_series": 16, "series_length": 1024}


def champion_version(tracking_uri: str, name: str) -> int | None:
    """The version holding the champion alias, or None (no such model or alias yet)."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    try:
        return int(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def crown(tracking_uri: str, name: str, version: int) -> None:
    """Give `version` the champion alias (the first model of a new registry has no rival yet)."""
    mlflow_client(tracking_uri).set_registered_model_alias(name, CHAMPION, str(version))
