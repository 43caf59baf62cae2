"""The README's Python examples run as written, on a database nobody prepared."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_a_readme_python_example_runs_on_a_fresh_database(number, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env["FEEDBACK_DB_URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[number]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _simulated_rates(*options: str) -> list[float]:
    """The per-round dislike rates `feedback-core simulate --rounds 10 --users 60` prints."""
    out = subprocess.run(
        [sys.executable, "-m", "feedback_core.cli", "simulate", "--rounds", "10", "--users", "60", *options],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return [float(m) for m in re.findall(r"^\s+\d+\s+[\d,]+\s+[\d,]+\s+([\d.]+)%$", out, re.MULTILINE)]


def test_the_readmes_simulation_figures_are_what_simulate_prints():
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    with_feedback = _simulated_rates()
    without = _simulated_rates("--no-feedback")
    assert len(with_feedback) == len(without) == 10
    first, last = with_feedback[0], with_feedback[-1]
    change = round((last / first - 1) * 100)
    assert f"falls from {first:.1f}% in the first round to {last:.1f}% in the tenth ({change:+d}%)" in text
    assert f"stays between {min(without):.1f}% and {max(without):.1f}%" in text
