"""Serve the REST API on a free loopback port with in-memory state; print its URL.

For tests whose client is synchronous (schemathesis, marathon-python): they need the
server in another process. Runs until killed.
"""

from __future__ import annotations

import sys

import trio

import marathon_rest.plugin
from marathon_core.config import parse_config
from marathon_core.plugins import get_plugin_host
from marathon_core.service import ServiceContext, validation_context
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore
from marathon_rest.server import serve_api


async def main() -> None:
    host = get_plugin_host(load_entrypoints=False, extra={"rest": marathon_rest.plugin})
    args = ["--http_port", "0", "--http_address", "127.0.0.1", *sys.argv[1:]]
    config = parse_config(args, addoption_hook=host.addoption, environ={})
    ctx = ServiceContext(
        config=config,
        plugins=host,
        master_url="http://127.0.0.1:5050",
        state=await StateStore.open(MemoryStorage()),
        validation=validation_context(config, host),
    )
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_api, ctx)
        print(url, flush=True)


if __name__ == "__main__":
    trio.run(main)
