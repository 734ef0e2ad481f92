"""The HTML report opened in a real browser: headless Chromium (Debian's package) driven over the DevTools
protocol (tests/support/browser.py). The report must render with no console output, no exceptions, no
failed loads and no network; every plot must decode; the full-page screenshot must show the page.

A negative control opens a deliberately broken page through the same driver, so a silent driver
cannot make the report's test pass."""

from __future__ import annotations

import io
import re
import socket
import struct
from pathlib import Path

import pytest
from PIL import Image

from tests.support.browser import Browser, BrowserError, live_processes_in_group
from tests.support.report_data import END, NETUID, PLOT_SECTIONS, START, fill_sim_warehouse

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

IMAGES_JS = ("Array.from(document.images).map(i => ({src: i.src.slice(0, 30), complete: i.complete, "
             "width: i.naturalWidth, height: i.naturalHeight, shown: i.getBoundingClientRect().width}))")


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def report_html(tmp_path_factory, prefect_api) -> Path:
    """The report of sim:7's netuid 1 over blocks 139..180, written by the real report flow."""
    from flows.report import report_flow

    wh = fill_sim_warehouse(tmp_path_factory.mktemp("browser") / "wh")
    reports_dir = tmp_path_factory.mktemp("reports")
    return Path(report_flow(warehouse=str(wh.root), netuid=NETUID, start_block=START, end_block=END,
                            reports_dir=str(reports_dir)))


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which the PNG format puts first after the signature."""
    assert png[:8] == PNG_MAGIC, png[:8]
    length, kind = struct.unpack(">I4s", png[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", png[16:24])


def test_report_renders_in_chromium_with_no_errors_and_no_network(report_html, browser, tmp_path):
    text = report_html.read_text(encoding="utf-8")
    plots_in_file = text.count("data:image/png;base64,")
    assert plots_in_file == PLOT_SECTIONS

    with browser.open(report_html.as_uri()) as page:
        # The report has no script: any console message, exception or failed load is a defect.
        assert page.console == []
        assert page.exceptions == []
        assert page.log_errors == []
        assert page.failed_requests == []
        assert [e for e in page.log_entries if e["level"] == "warning"] == []
        assert page.requests[0] == report_html.as_uri()
        assert [u for u in page.requests if not u.startswith(("file:", "data:"))] == []

        images = page.evaluate(IMAGES_JS)
        assert len(images) == plots_in_file
        assert page.evaluate("document.querySelectorAll('section img').length") == plots_in_file
        for image in images:
            assert image["src"].startswith("data:image/png;base64,")
            assert image["complete"] and image["width"] > 0 and image["height"] > 0 and image["shown"] > 0, image

        assert page.evaluate("document.title") == f"yumaflow report: netuid {NETUID}, blocks {START}..{END}"
        assert page.evaluate("document.querySelector('h1').textContent").startswith(f"yumaflow report: netuid {NETUID}")

        document_size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        png = page.screenshot()

    shot = tmp_path / "report.png"
    shot.write_bytes(png)
    width, height = png_size(shot.read_bytes())
    # The whole document, not the 1280×900 window: five plots and their tables are far taller than it.
    assert (width, height) == tuple(document_size)
    assert height > 900
    pixels = Image.open(io.BytesIO(png)).convert("RGB")
    assert pixels.size == (width, height)
    colours = pixels.getcolors(maxcolors=width * height)
    assert len(colours) > 100  # text, tables and plots, not a blank page
    white = max((count for count, rgb in colours if rgb == (255, 255, 255)), default=0)
    assert white < 0.97 * width * height


def test_the_driver_reports_console_errors_exceptions_broken_images_and_network(browser, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body>"
        "<script>console.error('deliberate error', 42); throw new Error('deliberate exception');</script>"
        "<img src='missing.png'><img src='http://127.0.0.1:9/remote.png'>"
        "<img src='data:image/png;base64,iVBORw0KGgoAAAAN'></body></html>",  # a truncated inline PNG
        encoding="utf-8")

    with browser.open(broken.as_uri()) as page:
        assert [(m.type, m.text) for m in page.console] == [("error", "deliberate error 42")]
        assert len(page.exceptions) == 1 and page.exceptions[0].startswith("Error: deliberate exception")
        missing = (tmp_path / "missing.png").as_uri()
        assert page.requests[:3] == [broken.as_uri(), missing, "http://127.0.0.1:9/remote.png"]
        assert [u for u in page.requests if not u.startswith(("file:", "data:"))] == ["http://127.0.0.1:9/remote.png"]
        assert f"{missing}: Failed to load resource: net::ERR_FILE_NOT_FOUND" in page.log_errors
        assert f"{missing}: net::ERR_FILE_NOT_FOUND" in page.failed_requests
        images = page.evaluate(IMAGES_JS)
        assert [(i["complete"], i["width"]) for i in images] == [(True, 0)] * 3  # none decoded
        assert page.evaluate("document.title") == "broken"


def test_a_failing_test_still_stops_chromium_and_removes_its_profile():
    with pytest.raises(AssertionError, match="a failing test"), Browser() as b:
        pgid, temp_dir = b.process_group, b.temp_dir
        assert len(live_processes_in_group(pgid)) > 1  # the browser and its helper processes
        assert (temp_dir / "profile" / "DevToolsActivePort").is_file()
        raise AssertionError("a failing test")
    assert live_processes_in_group(pgid) == []
    assert not temp_dir.exists()
    assert b.process_group is None and b.temp_dir is None


def test_a_missing_chromium_is_a_clear_error(tmp_path):
    absent = tmp_path / "chromium"
    expected = re.escape(f"headless Chromium is not installed at {absent}: ") + r".*`make test`'s setup .*apt-get"
    with pytest.raises(RuntimeError, match=expected), Browser(absent):
        pass
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing left behind


def test_a_page_that_never_finishes_loading_times_out_clearly(browser, tmp_path):
    # A listening socket that never answers: the image's request hangs, so the load event never fires.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        hanging = tmp_path / "hanging.html"
        hanging.write_text(f"<img src='http://127.0.0.1:{silent.getsockname()[1]}/never.png'>", encoding="utf-8")
        expected = re.escape(f"timed out waiting for the load event of {hanging.as_uri()} (1 s)")
        with pytest.raises(BrowserError, match=expected), browser.open(hanging.as_uri(), timeout_s=1):
            pass
