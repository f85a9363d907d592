"""Throughput of the app request pipeline next to a plain JSON round trip.

Run: ``.venv/bin/python benchmarks/bench_codec.py [example.json] [seconds]``. Prints
apps/s for ``parse_app`` + ``app_to_json`` (+ ``json.dumps``) and for ``json.loads`` +
``json.dumps`` of the same document, measured in the same run, and their ratio.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from marathon_core.errors import Violation
from marathon_core.model.codec import app_to_json, parse_app
from marathon_core.model.validation import ValidationContext

#: The Marathon-compatible request bodies the tests use, kept in the repository.
EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "marathon-examples"


class _AcceptAll:
    def validate(self, *args: Any, **kwargs: Any) -> list[Violation]:
        return []


def _context() -> ValidationContext:
    ops: dict[str, Any] = {}
    try:
        from marathon_constraints.plugin import marathon_constraint_operators

        ops = dict(marathon_constraint_operators())
    except ImportError:
        pass
    stand_in = _AcceptAll()
    protocols = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
    return ValidationContext(
        constraint_operators=ops,
        container_runtimes={"DOCKER": stand_in, "MESOS": stand_in},
        health_check_protocols=dict.fromkeys(protocols, stand_in),
    )


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn``, best of three rounds."""
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(50):
                fn()
            n += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES / "app-health-checks.json"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    raw = path.read_bytes()
    ctx = _context()

    def pipeline() -> object:
        return json.dumps(app_to_json(parse_app(raw, context=ctx)))

    def plain() -> object:
        return json.dumps(json.loads(raw))

    pipeline()
    full, base = _rate(pipeline, seconds), _rate(plain, seconds)
    print(f"document: {path.name} ({len(raw)} bytes)")
    print(f"parse_app + app_to_json + dumps: {full:12,.0f} apps/s")
    print(f"json.loads + json.dumps:         {base:12,.0f} docs/s")
    print(f"ratio (plain / pipeline):        {base / full:12.1f}x")


if __name__ == "__main__":
    main()
