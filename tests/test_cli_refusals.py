"""Every command refuses a bad value of each option it checks with ONE line on stderr naming it, the exit
code of bad input (2), nothing on stdout and no traceback; `--debug` adds the traceback. The range of a
backfill is checked against the chain's head before any work starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = str(Path(sys.executable).parent / "yumaflow")
# Substrate's public development phrase (//Alice's root): a mnemonic must never be taken as a hotkey URI.
PUBLIC_DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"

CASES = [
    # (arguments, what the one line must say)
    (["backfill", "--chain", "sim:11", "--netuid", "1", "--start-block", "0", "--end-block", "3000"],
     "block 3000 is past the finalized head of sim:11 (block 200)"),
    (["backfill", "--chain", "sim:11", "--netuid", "1", "--start-block", "10", "--end-block", "3"],
     "--start-block 10 is after --end-block 3"),
    (["backfill", "--netuid", "one", "--start-block", "0", "--end-block", "3"], "argument --netuid"),
    (["backfill", "--netuid", "1", "--start-block", "-4", "--end-block", "3"], "argument --start-block"),
    (["backfill", "--netuid", "1", "--start-block", "0", "--end-block", "3", "--chunk-size", "0"],
     "argument --chunk-size"),
    (["backfill", "--netuid", "1", "--start-block", "0", "--end-block", "3", "--task-runner", "spark"],
     "spark"),
    (["snapshot", "--chain", "sim:11", "--netuid", "1", "--block", "999999"],
     "block 999999 is past the finalized head"),
    (["snapshot", "--chain", "http://127.0.0.1:9944", "--netuid", "1"], "ws://…, wss://… or replay:PATH"),
    (["epoch", "--netuid", "1", "--hotkey-uri", PUBLIC_DEV_PHRASE], "--hotkey-uri takes a development key path"),
    (["epoch", "--netuid", "1", "--hotkey-uri", "//Alice", "--timeout", "-1"], "argument --timeout"),
    (["consensus", "--inputs", "/nonexistent/in", "--output", "/tmp/out"], "/nonexistent/in"),
    (["consensus", "--netuid", "1", "--start-block", "9", "--end-block", "2"], "--start-block 9 is after --end-block"),
    (["whatif", "--netuid", "1", "--start-block", "9", "--end-block", "2"], "--start-block 9 is after --end-block"),
    (["report", "--netuid", "1", "--start-block", "9", "--end-block", "2"], "--start-block 9 is after --end-block"),
    (["compare", "--margin", "-0.5"], "argument --margin"),
    (["miner", "serve", "--netuid", "1", "--hotkey-uri", "//Alice", "--reload-interval", "0"],
     "argument --reload-interval"),
    (["demo", "--tempos", "0"], "argument --tempos"),
    (["doctor", "--chain", "ftp://node"], "ws://…, wss://… or replay:PATH"),
    (["no-such-command"], "invalid choice"),
]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("args", "says"), CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_one_line_and_exit_code_2(args, says):
    out = _run(*args)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert says in lines[0] and lines[0].startswith("yumaflow"), lines[0]
    assert out.stdout == ""


def test_debug_adds_the_traceback():
    out = _run("--debug", "backfill", "--chain", "sim:11", "--netuid", "1", "--start-block", "0", "--end-block",
               "3000")
    assert out.returncode == 2 and "Traceback (most recent call last)" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("yumaflow backfill: error: block 3000 is past")
