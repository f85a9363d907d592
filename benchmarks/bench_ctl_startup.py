"""Start-up time of ``marathon-ctl --help`` next to ``python -c pass``.

Run: ``.venv/bin/python benchmarks/bench_ctl_startup.py [runs]``. Each command is run
``runs`` times (default 20) alternately, in fresh interpreters; prints the median and
the best wall time of each, the difference (what marathon-ctl itself costs), and
whether ``--help`` stays under the 300 ms budget. ``--help`` must not import httpx or
rich: they are imported when a command needs them.

Measured here (2 cores shared with other work, load 3-5), 30 runs: ``python -c pass``
median 40-80 ms (best 26-28); ``marathon-ctl --help`` median 150-196 ms (best 78-101),
about 115 ms of its own (click and the command modules); no heavy module imported.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: The budget of issue 17 for ``marathon-ctl --help`` on these machines.
BUDGET_SECONDS = 0.300


def _ctl() -> list[str]:
    script = Path(sys.executable).with_name("marathon-ctl")
    if script.exists():
        return [str(script)]
    found = shutil.which("marathon-ctl")
    return [found] if found else [sys.executable, "-m", "marathon_ctl"]


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    baseline_cmd = [sys.executable, "-c", "pass"]
    help_cmd = [*_ctl(), "--help"]
    _wall(baseline_cmd), _wall(help_cmd)  # warm the page cache
    baseline, ctl = [], []
    for _ in range(runs):
        baseline.append(_wall(baseline_cmd))
        ctl.append(_wall(help_cmd))
    heavy = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import marathon_ctl.cli"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in heavy.splitlines()}
    eager = sorted(loaded & {"httpx", "rich", "httpx_sse", "h11", "anyio"})
    b, c = statistics.median(baseline), statistics.median(ctl)
    print(f"python -c pass        median {b * 1000:6.1f} ms  best {min(baseline) * 1000:6.1f} ms")
    print(f"marathon-ctl --help   median {c * 1000:6.1f} ms  best {min(ctl) * 1000:6.1f} ms")
    print(f"marathon-ctl's own    {(c - b) * 1000:6.1f} ms ({c / b:.1f}x python -c pass)")
    print(f"heavy modules imported by --help: {', '.join(eager) or 'none'}")
    verdict = "within" if c < BUDGET_SECONDS else "OVER"
    print(f"{verdict} the {BUDGET_SECONDS * 1000:.0f} ms budget")


if __name__ == "__main__":
    main()
