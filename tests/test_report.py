"""The HTML report (tasks/reporting/report.py, flows/report.py) over a warehouse filled from the
simulated subnet sim:7, whose own epochs the recomputation must equal exactly (tests/test_sim_flows.py)."""

from __future__ import annotations

import base64
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tasks.consensus.inputs import PARITY_COLUMNS
from tasks.reporting import render_report
from tasks.reporting.report import SECTIONS
from tests.support.report_data import END, EPOCH_BLOCKS, NETUID, START, fill_sim_warehouse
from warehouse import Warehouse

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sim_warehouse(tmp_path_factory) -> Warehouse:
    """Snapshots at b − 1 and b of each epoch block b, the chain replay, one what-if variant and scores."""
    return fill_sim_warehouse(tmp_path_factory.mktemp("report") / "wh")


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def parse(path: Path) -> tuple[str, Page]:
    text = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    return text, page


def assert_self_contained(text: str, page: Page) -> int:
    assert text.startswith("<!DOCTYPE html>") and text.count("<html") == 1 and text.rstrip().endswith("</html>")
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object")]
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(name, "")), (tag, attrs.get(name, "")[:80])
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
    return len(images)



def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def section(text: str, key: str) -> str:
    return re.search(rf"<section id='{key}'>(.*?)</section>", text, re.S).group(1)


def test_report_of_the_sim_has_every_section_and_exact_parity(sim_warehouse, tmp_path):
    out = render_report(sim_warehouse, NETUID, START, END, tmp_path / "r" / "report.html")
    assert out == tmp_path / "r" / "report.html"
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # atomic: no temp file left
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()  # shared like any file, not 0600
    text, page = parse(out)
    assert page.headings == list(SECTIONS.values())
    assert assert_self_contained(text, page) == 5  # distributions, stake, weights, what-if, scores
    assert "no data" not in text

    # Parity: every compared column, exact on all 64 uids of each of the 3 epochs the chain ran.
    parity = section(text, "parity")
    assert "Exact: " in parity and "DIFFERS" not in parity
    n_uids = sim_warehouse.read("neurons", netuid=NETUID, block_start=180, block_end=180).height
    assert n_uids == 64
    total = len(PARITY_COLUMNS) * len(EPOCH_BLOCKS) * n_uids
    assert f"{total}/{total} uid values equal over {len(EPOCH_BLOCKS)} epochs" in parity
    for column in PARITY_COLUMNS:
        assert (f"<tr><td>{column}</td><td>{len(EPOCH_BLOCKS)}</td><td>{len(EPOCH_BLOCKS) * n_uids}</td>"
                f"<td>{len(EPOCH_BLOCKS) * n_uids}</td><td>0</td><td>exact</td></tr>") in parity

    # What-if: the baseline equals the chain (0 delta every epoch); classic Yuma moves dividends.
    whatif = section(text, "whatif")
    for block in EPOCH_BLOCKS:
        assert f"<tr><td>baseline</td><td>{block}</td><td>0</td><td>0</td></tr>" in whatif
    assert re.search(r"<tr><td>classic</td><td>180</td><td>(0\.\d+|[1-9][\d.]*)</td>", whatif)


def test_missing_tables_give_no_data_notes(tmp_path):
    wh = Warehouse(tmp_path / "empty")
    out = render_report(wh, NETUID, None, None, tmp_path / "empty.html")
    text, page = parse(out)
    assert page.headings == list(SECTIONS.values())
    assert assert_self_contained(text, page) == 0
    for key in SECTIONS:
        assert "no data: " in section(text, key)
    assert "run yumaflow consensus over this range" in section(text, "parity")
    assert "run yumaflow epoch" in section(text, "scores")


def test_chain_only_warehouse_notes_missing_whatif_and_scores(sim_warehouse, tmp_path):
    # A range of the sim before any epoch was replayed: snapshots exist, epoch_results do not.
    out = render_report(sim_warehouse, NETUID, 139, 139, tmp_path / "early.html")
    text, page = parse(out)
    assert assert_self_contained(text, page) == 3
    assert "no data: " not in section(text, "distributions")
    for key in ("parity", "whatif", "scores"):
        assert "no data: " in section(text, key)


def test_report_flow_names_the_file_and_returns_it(sim_warehouse, tmp_path, prefect_api):
    from flows.report import report_flow

    path = report_flow(warehouse=str(sim_warehouse.root), netuid=NETUID, start_block=START, end_block=END,
                       reports_dir=str(tmp_path / "reports"))
    assert path == str((tmp_path / "reports" / f"report-netuid{NETUID}-{START}-{END}.html").resolve())
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [Path(path).name]
    text, page = parse(Path(path))
    assert page.headings == list(SECTIONS.values())
