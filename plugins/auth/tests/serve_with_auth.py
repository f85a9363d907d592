"""Serve marathon-rest with marathon-auth over in-memory state; print the URL.

For synchronous clients (marathon-python), which need the server in another process.
Arguments are marathon flags (``--auth_users FILE``, ``--http_credentials u:p``).
"""

from __future__ import annotations

import sys

import trio

import marathon_auth.plugin
import marathon_rest.plugin
from marathon_core.testing.context import ManualLeader, memory_context
from marathon_rest.server import serve_api


async def main() -> None:
    args = ["--http_port", "0", "--http_address", "127.0.0.1", *sys.argv[1:]]
    ctx = await memory_context(
        args, plugins={"rest": marathon_rest.plugin, "auth": marathon_auth.plugin}
    )
    ctx.plugins.configure(ctx.config)
    async with trio.open_nursery() as nursery:
        await nursery.start(ctx.election.run, trio.sleep_forever)
        ManualLeader.attach(ctx)
        url = await nursery.start(serve_api, ctx)
        print(url, flush=True)


if __name__ == "__main__":
    trio.run(main)
