"""Shared by the tests that drive Debian's Chromium against a real ``streamlit run``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A browser test module's pytestmark (it also skips itself without playwright: importorskip).
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (apt-get install -y chromium); CI installs it",
    ),
]


def streamlit_command(port: int, *options: str) -> list[str]:
    """``streamlit run`` of the dashboard on ``port``, headless, with ``options``."""
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py")]
    command += ["--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none"]
    return [*command, *options]


def wait_until_serving(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until the server on ``port`` answers its health check; raise if it stopped or is late."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log}") from None
            time.sleep(0.2)
