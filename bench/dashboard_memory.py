"""Peak memory of the dashboard server while a browser visits every page.

Starts the real server (``streamlit run dashboard/app.py``, headless, on a free port, over the
given database), drives Debian's Chromium through every page with Playwright, and samples the
resident memory of the server's process tree (from /proc) every 50 ms. The baseline, measured
in the same run, is the same server and visit over bench/dashboard.py's small demo database.

    .venv/bin/python bench/dashboard_memory.py --db sqlite:///bench/.cache/scale-sqlite-....db

bench/scale.py runs this on its 10-million-impression SQLite file (target: under 500 MB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# (url path, the page's title): every page of dashboard/app.py
PAGES = [
    ("overview", "Overview"),
    ("reasons", "Reasons"),
    ("errors", "Prediction errors"),
    ("versions", "Model versions"),
    ("retrain", "Retrain"),
    ("adjustments", "Adjustments"),
    ("users", "Users"),
    ("audit", "Audit log"),
]
# Finished: nothing running, stale or waiting for its code, and the page's title is there.
RENDERED = """(title) =>
    !document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-stale="true"]')
    && [...document.querySelectorAll('h1')].some(h => h.textContent.includes(title))"""
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def tree_rss_bytes(root: int) -> int:
    """Return the resident memory of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as f:
                resident = int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):  # the process ended meanwhile
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is the parent pid
        rss[pid] = resident * PAGE_SIZE
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


class Sampler(threading.Thread):
    """Sample a process tree's resident memory until stopped; keep the peak."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.peak = self.last = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.last = tree_rss_bytes(self.pid)
            self.peak = max(self.peak, self.last)
            self.halt.wait(self.every_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_memory(db_url: str, log_dir: Path | None = None) -> dict:
    """Serve ``db_url`` with ``streamlit run``, visit every page, return MB and seconds per page."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install -y chromium")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FEEDBACK_DB_URL": db_url, "FEEDBACK_DASHBOARD_WORKER": "0"}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py")]
    command += ["--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none"]
    command += ["--browser.gatherUsageStats", "false"]
    log_path = (log_dir or HERE / ".cache") / f"dashboard_memory_{port}.log"
    log_path.parent.mkdir(exist_ok=True)
    result: dict = {"db": db_url, "pages": {}}
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = Sampler(server.pid)
        sampler.start()
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"streamlit did not start; see {log_path}") from None
                    time.sleep(0.2)
            time.sleep(1)
            result["started_mb"] = sampler.last / 2**20
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                for path, title in PAGES:
                    began = time.perf_counter()
                    page.goto(f"{base}/{path}")
                    page.wait_for_function(RENDERED, arg=title, timeout=120_000)
                    page.wait_for_timeout(500)  # a run that starts late shows its widget by now
                    page.wait_for_function(RENDERED, arg=title, timeout=120_000)
                    result["pages"][path] = time.perf_counter() - began
                    errors = page.query_selector_all('[data-testid="stException"]')
                    if errors:
                        raise RuntimeError(f"page {path} raised: {errors[0].inner_text()[:500]}")
                browser.close()
            time.sleep(1)
        finally:
            sampler.halt.set()
            sampler.join()
            server.terminate()
            server.wait(timeout=30)
    result["peak_mb"] = sampler.peak / 2**20
    result["end_mb"] = sampler.last / 2**20
    log_path.unlink()  # kept only when the server failed
    return result


def report_memory(big: dict, target_mb: float, baseline: dict | None = None) -> list[str]:
    """Measure the baseline (the small demo) if not given, print both; return missed targets."""
    if baseline is None:
        from scale import bench_module

        baseline = measure_memory(bench_module("dashboard").demo_database(300, 30, 1500, 7))
    print("\ndashboard server memory (streamlit run + Chromium visiting every page):")
    for name, r in (("demo (baseline)", baseline), ("scale database", big)):
        pages = ", ".join(f"{p} {s:.1f}" for p, s in r["pages"].items())
        print(
            f"  {name:<16} started {r['started_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB, "
            f"after the visit {r['end_mb']:.0f} MB; seconds per page: {pages}"
        )
    print(f"  peak ratio to the baseline: {big['peak_mb'] / baseline['peak_mb']:.2f}")
    if big["peak_mb"] >= target_mb:
        return [f"dashboard server peak {big['peak_mb']:.0f} MB >= {target_mb:.0f} MB"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="database URL the server reads")
    parser.add_argument("--target-mb", type=float, default=500.0)
    args = parser.parse_args(argv)
    missed = report_memory(measure_memory(args.db), args.target_mb)
    for line in missed:
        print(f"TARGET MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
