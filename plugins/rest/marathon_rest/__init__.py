"""marathon-rest: Marathon's /v2 REST API for marathon-core."""

from __future__ import annotations

__version__ = "0.1.0"
