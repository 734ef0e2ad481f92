"""`yumaflow` with the crash tests' hooks installed, for tests that must stop a process at a known point.

    python -m tests.support.hooked_cli [--commit-point POINT[#N]=MARKER] [--after-scores MARKER] -- ARGS

--commit-point: at the N-th arrival (default the first) of this process at a warehouse commit point
(warehouse/manifest.py `commit_point_hook`), write the PID to MARKER and sleep 60 s, so the test can
SIGKILL the process there. --after-scores: the same once the epoch flow has stored its scores
(flows/epoch.py `after_scores_hook`); --after-answers once it has stored its answers
(`after_answers_hook`). The hooks exist only in processes started this way: production
code has no environment variable or option that pauses it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PAUSE_S = 60


def _pause(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    time.sleep(PAUSE_S)


def install(commit_point: str | None = None, after_scores: str | None = None,
            after_answers: str | None = None) -> None:
    """Install the hooks in this process (also used by in-process children of the concurrency tests)."""
    if commit_point:
        from warehouse import manifest

        where, marker = commit_point.split("=", 1)
        name, _, nth = where.partition("#")
        arrivals = {"n": 0}

        def at_commit_point(point: str) -> None:
            if point == name:
                arrivals["n"] += 1
                if arrivals["n"] == int(nth or 1):
                    _pause(marker)

        manifest.commit_point_hook = at_commit_point
    if after_scores:
        from flows import epoch

        epoch.after_scores_hook = lambda: _pause(after_scores)
    if after_answers:
        from flows import epoch

        epoch.after_answers_hook = lambda: _pause(after_answers)


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="hooked_cli")
    parser.add_argument("--commit-point")
    parser.add_argument("--after-scores")
    parser.add_argument("--after-answers")
    options = parser.parse_args(argv[:split])
    install(options.commit_point, options.after_scores, options.after_answers)
    from flows.cli import main as yumaflow

    return yumaflow(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
