"""One settings object for every command and flow.

Precedence (highest first): command-line options, environment variables `YUMAFLOW_<NAME>`, the TOML
file (`--config PATH`, else `$YUMAFLOW_CONFIG`, else `./yumaflow.toml` if it exists), the defaults
below. Secrets (seeds, mnemonics, keyfile passwords) are never settings: they are read from the
keyfile or the environment at the moment of signing, so they cannot leak through a settings dump.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

DEFAULT_CONFIG_FILE = Path("yumaflow.toml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUMAFLOW_", extra="forbid", frozen=True)

    warehouse: Path = Field(Path("data/warehouse"), description="warehouse directory (Parquet + catalog.duckdb)")
    chain: str = Field("sim", description="chain source: sim[:SEED][@STATE] (simulated), ws://… (a node), replay:PATH")
    mlflow_tracking_uri: str = Field("sqlite:///data/mlflow.db", description="MLflow tracking URI")
    reports_dir: Path = Field(Path("data/reports"), description="where HTML reports are written")
    log_level: str = Field("INFO", description="log level of yumaflow's own loggers")
    task_runner: str = Field("threads", description="where backfill/consensus/whatif chunks run: threads, dask "
                                                    "(a local Dask cluster), tcp://HOST:PORT (a Dask scheduler)")
    dask_workers: int = Field(2, ge=1, description="worker processes of the local Dask cluster (task_runner dask)")

    @field_validator("task_runner")
    @classmethod
    def _known_task_runner(cls, value: str) -> str:
        from flows.runners import check_task_runner

        return check_task_runner(value)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("YUMAFLOW_CONFIG") or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings with `overrides` (options given on the command line; None means 'not given')."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if config_file is not None:
        if not config_file.exists():
            raise FileNotFoundError(f"config file {config_file} does not exist")
        os.environ["YUMAFLOW_CONFIG"] = str(config_file)
    from pydantic import ValidationError

    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"])
            if err["type"] == "extra_forbidden":
                known = ", ".join(Settings.model_fields)
                problems.append(f"unknown setting {name!r} (known: {known})")
            else:
                problems.append(f"setting {name!r}: {err['msg']} (got {err.get('input')!r})")
        raise ValueError("; ".join(problems)) from None
