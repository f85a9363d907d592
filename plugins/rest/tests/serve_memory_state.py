"""Serve the REST API on a free loopback port with in-memory state; print its URL.

For tests whose client is synchronous (schemathesis, marathon-python): they need the
server in another process. Runs until killed.
"""

from __future__ import annotations

import sys

import trio

import marathon_rest.plugin
from marathon_core.testing.context import memory_context
from marathon_rest.server import serve_api


async def main() -> None:
    args = ["--http_port", "0", "--http_address", "127.0.0.1", *sys.argv[1:]]
    ctx = await memory_context(args, plugins={"rest": marathon_rest.plugin})
    async with trio.open_nursery() as nursery:
        await nursery.start(ctx.election.run, trio.sleep_forever)
        url = await nursery.start(serve_api, ctx)
        print(url, flush=True)


if __name__ == "__main__":
    trio.run(main)
