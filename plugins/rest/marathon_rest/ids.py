"""App and group ids taken from request paths."""

from __future__ import annotations

from marathon_core.errors import INVALID_JSON, NotFoundError, ValidationError, Violation
from marathon_core.model.ids import PathId, valid_id_string


def id_from_url(raw: str, *, kind: str, creating: bool = False) -> PathId:
    """The absolute id in a URL; an id Marathon's rules reject cannot name anything (404),
    and cannot be created (422 at ``/id``, as the same id in a body would be)."""
    if raw.strip("/") and not valid_id_string(raw.strip("/")):
        if creating:
            raise ValidationError([Violation("/id", "error.pattern")], message=INVALID_JSON)
        raise NotFoundError(f"{kind} '{raw}' does not exist")
    return PathId.parse(raw, base=PathId.root())
