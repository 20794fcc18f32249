"""Render a report in headless Chromium: a screenshot, and how many of its images decoded.

Debian's ``chromium`` started as the machine notes advise (no sandbox as root, no GPU, no
background networking, a fresh profile). ``--dump-dom`` gives the DOM after the page's load
event, where the page's own script has written ``data-images-loaded``/``data-images-total``.
Every process Chromium starts is in its own session and is killed by process group at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
)


class BrowserError(RuntimeError):
    """Chromium is missing, failed or timed out; the message is one line."""


@dataclass(frozen=True)
class PageCheck:
    images_total: int
    images_loaded: int
    title: str
    screenshot: Path

    @property
    def ok(self) -> bool:
        return self.images_total > 0 and self.images_loaded == self.images_total


class _BodyAttributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.body = dict(attrs)
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    return None


def _run(command: list[str], timeout_s: float) -> str:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BrowserError(f"chromium did not finish within {timeout_s:g} s") from exc
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process.returncode != 0:
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BrowserError(f"chromium exited with {process.returncode}: {tail}")
    return stdout


def check_page(
    index: Path, screenshot: Path, chromium: str | None = None, timeout_s: float = 90
) -> PageCheck:
    binary = chromium or find_chromium()
    if binary is None:
        raise BrowserError("chromium not found (Debian: apt-get install chromium; or set CHROMIUM)")
    url = Path(index).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        common = [binary, *FLAGS, f"--user-data-dir={profile}"]
        dom = _run([*common, "--dump-dom", url], timeout_s)
        screenshot = Path(screenshot).resolve()
        _run([*common, f"--screenshot={screenshot}", "--window-size=1280,2400", url], timeout_s)
    parser = _BodyAttributes()
    parser.feed(dom)
    if not screenshot.is_file():
        raise BrowserError(f"chromium wrote no screenshot at {screenshot}")
    return PageCheck(
        images_total=int(parser.body.get("data-images-total") or 0),
        images_loaded=int(parser.body.get("data-images-loaded") or 0),
        title=parser.title.strip(),
        screenshot=screenshot,
    )
