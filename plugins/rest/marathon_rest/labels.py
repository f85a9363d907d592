"""Marathon's label selectors for ``GET /v2/apps?label=...``.

Comma-separated requirements, all of which must hold: ``key`` (exists), ``key==v``,
``key!=v``, ``key in (a,b)``, ``key notin (a,b)``. Every form requires the label to
exist, ``!=`` and ``notin`` included, as in Marathon. A term is made of
``[-A-Za-z0-9_.]`` or backslash-escaped characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from marathon_core.errors import InvalidArgumentError

Selector = Callable[[Mapping[str, str]], bool]

_TERM = r"(?:[-A-Za-z0-9_.]|\\.)+"
_REQUIREMENT = re.compile(
    rf"\s*(?P<key>{_TERM})\s*"
    rf"(?:(?P<op>==|!=)\s*(?P<value>{_TERM})"
    rf"|\s(?P<set_op>in|notin)\s*\(\s*(?P<values>{_TERM}(?:\s*,\s*{_TERM})*)\s*\))?\s*"
    r"(?:,|$)"
)


def _unescape(term: str) -> str:
    return re.sub(r"\\(.)", r"\1", term)


def parse_label_selector(text: str) -> Selector:
    """A predicate over an app's labels; InvalidArgumentError (422) if unparseable."""
    requirements: list[Selector] = []
    position = 0
    while position < len(text):
        match = _REQUIREMENT.match(text, position)
        if match is None or match.end() == position:
            raise InvalidArgumentError(
                f"Can not parse label selector {text}. Reason: unexpected input at "
                f"position {position}: {text[position : position + 20]!r}"
            )
        requirements.append(_requirement(match))
        position = match.end()
    if not requirements:
        raise InvalidArgumentError(f"Can not parse label selector {text}. Reason: it is empty")
    return lambda labels: all(r(labels) for r in requirements)


def _requirement(match: re.Match[str]) -> Selector:
    key = _unescape(match["key"])
    if match["op"] is not None:
        value, equal = _unescape(match["value"]), match["op"] == "=="
        return lambda labels: key in labels and (labels[key] == value) == equal
    if match["set_op"] is not None:
        values = {_unescape(v.strip()) for v in match["values"].split(",")}
        inside = match["set_op"] == "in"
        return lambda labels: key in labels and (labels[key] in values) == inside
    return lambda labels: key in labels
