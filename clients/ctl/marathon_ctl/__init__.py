"""marathon-ctl: drive Marathon from the terminal over its HTTP API only.

Nothing here imports server code, so the same client drives this project's server
and a real Marathon 1.x. Heavy modules (httpx, rich) are imported where a command
needs them: ``marathon-ctl --help`` must start fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
