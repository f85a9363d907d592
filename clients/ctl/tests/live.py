"""Helpers of the live tests: goldens with the changing parts (ids, times, counts,
hosts) normalised, and app definitions."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

_NORMALISE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<ID>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"), "<TS>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<T>"),
    (re.compile(r"(/[\w/-]+)\.[0-9a-f]{8}\b"), r"\1.<I>"),
    (re.compile(r"127\.0\.0\.\d+"), "<HOST>"),
    (re.compile(r"\d+ offers seen, \d+ not used"), "<N> offers seen, <N> not used"),
    (re.compile(r"(constraints|cpus|mem|disk|ports|role) \d+/\d+"), r"\1 <N>/<N>"),
    (re.compile(r"after \d+s"), "after <N>s"),
]


def normalise(text: str) -> str:
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def check_golden(name: str, output: str) -> None:
    """``output`` normalised equals ``golden/<name>.txt`` (``UPDATE_GOLDEN=1`` rewrites it)."""
    path = Path(__file__).with_name("golden") / f"{name}.txt"
    actual = normalise(output)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual)
    assert actual == path.read_text()


def app_file(tmp_path: Path, **definition: Any) -> str:
    base = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}
    path = tmp_path / f"{definition['id'].strip('/').replace('/', '_')}.json"
    path.write_text(json.dumps({**base, **definition}))
    return str(path)
