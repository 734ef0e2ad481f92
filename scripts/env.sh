# Sourced by the Makefile's recipes: offline, quiet, deterministic runs (see README "Environment").
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false   # the server's telemetry heartbeat tries the internet
export DO_NOT_TRACK=true                        # Prefect SDK analytics and MLflow ("1" is not enough for MLflow)
export MLFLOW_DISABLE_TELEMETRY=true
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}"
export PREFECT_LOGGING_LEVEL="${PREFECT_LOGGING_LEVEL:-WARNING}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # 2 OpenMP threads spin-wait on a busy 2-core machine
export TORCH_NUM_THREADS="${TORCH_NUM_THREADS:-1}"
export PATH="$PWD/.venv/bin:$PATH"
