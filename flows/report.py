"""Flow `report`: the HTML report of one subnet and block range (DESIGN.md §8), and a Prefect artifact
pointing at it. The work is tasks/reporting/report.py's `render_report`; this only names the file."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.reporting import render_report
from warehouse import Warehouse


def report_path(reports_dir: str | Path, netuid: int, start_block: int | None, end_block: int | None) -> Path:
    """`<reports_dir>/report-netuid<N>-<start>-<end>.html`; an open end is written `first` / `last`."""
    start = "first" if start_block is None else str(start_block)
    end = "last" if end_block is None else str(end_block)
    return Path(reports_dir) / f"report-netuid{netuid}-{start}-{end}.html"


@flow(name="report", log_prints=True)
def report_flow(warehouse: str, netuid: int, start_block: int | None, end_block: int | None,
                reports_dir: str) -> str:
    """Render the report of `netuid` over start_block..end_block; returns the HTML file's absolute path."""
    if start_block is not None and end_block is not None and end_block < start_block:
        raise ValueError(f"end block {end_block} is before start block {start_block}")
    path = render_report(Warehouse(Path(warehouse)), netuid, start_block, end_block,
                         report_path(reports_dir, netuid, start_block, end_block)).resolve()
    create_markdown_artifact(key=f"report-netuid-{netuid}",
                             markdown=f"[Report: netuid {netuid}, blocks {start_block}..{end_block}]"
                                      f"({path.as_uri()})\n\nFile: `{path}`",
                             description=f"HTML report of netuid {netuid}")
    print(f"report written to {path}")
    return str(path)
