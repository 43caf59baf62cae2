"""save_dislike of the working tree against an earlier revision, side by side in one process.

This machine's speed drifts by a third between runs minutes apart, more than most changes are
worth, so two separate runs of bench/record.py cannot tell a 10% change from noise. Here the
package as of ``--base`` (exported from git under the name ``feedback_core_base``) and the
working tree's package record the same dislikes into two copies of the same prefilled database,
in alternating blocks of 50 calls, so a slow moment of the machine slows both alike.

    .venv/bin/python bench/record_ab.py --base 9f3f2c9
    .venv/bin/python bench/record_ab.py --base HEAD~3 --size 1000000 -n 1500

Both copies start at the working tree's schema (the cached database of bench/prefill.py), so
the comparison is of the code alone; a migration's effect is not part of it.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def export_base(revision: str, into: Path) -> None:
    """Write the package as of ``revision`` to ``into/feedback_core_base``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "feedback_core"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "feedback_core_base"
    (into / "feedback_core").rename(package)
    for path in package.rglob("*.py"):
        path.write_text(re.sub(r"\bfeedback_core\b", "feedback_core_base", path.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--size", type=int, default=10_000, help="earlier dislikes in the database")
    parser.add_argument("-n", type=int, default=2000, help="timed calls per package")
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from prefill import World, remove_sqlite, sqlite_database
    from record import timed_call, workload

    import feedback_core

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export_base(args.base, folder)
        sys.path.insert(0, str(folder))
        import feedback_core_base

        world = World()
        source = sqlite_database(world, args.size, rebuild=False)
        systems = {}
        for name, package in (("base", feedback_core_base), ("working tree", feedback_core)):
            copy = folder / f"{name.replace(' ', '-')}.db"
            shutil.copyfile(source, copy)
            systems[name] = package.FeedbackSystem.from_settings(
                package.Settings(database_url=f"sqlite:///{copy}")
            )
        remove_sqlite(source)
        ops = workload(world, args.n + args.warmup, seed=3)
        times = {name: [] for name in systems}
        names = list(systems)
        for block, start in enumerate(range(0, len(ops), 50)):
            for name in names if block % 2 == 0 else names[::-1]:
                for i in range(start, min(start + 50, len(ops))):
                    _, ms, _ = timed_call(systems[name], ops[i])
                    if i >= args.warmup:
                        times[name].append(ms)
        for system in systems.values():
            system.close()

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"save_dislike, {args.n} calls each, {args.size:,} earlier dislikes, base {args.base}:")
    for name, median in medians.items():
        print(f"  {name:13s} median {median:.3f} ms, mean {statistics.mean(times[name]):.3f} ms")
    print(f"  working tree / base: {medians['working tree'] / medians['base']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
