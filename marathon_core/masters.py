"""Built-in plugin: ``--master`` values that name a running Mesos master over HTTP.

``http://host:5050``, ``https://host:5050`` and ``host:5050`` are served here. The
embedded cluster behind ``local`` comes from the ``marathon-mesos-local`` plugin.
"""

from __future__ import annotations

import re

import trio

from marathon_core import hookimpl
from marathon_core.config import Config
from marathon_core.contracts.services import MasterService

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")


def master_url_of(value: str) -> str | None:
    """The HTTP URL of a master given as a URL or ``host:port``, or None for other forms."""
    if value.startswith(("http://", "https://")):
        return value.rstrip("/")
    if _HOST_PORT.match(value):
        return f"http://{value}"
    return None


@hookimpl(trylast=True)  # asked last, so a plugin may claim any form of --master first
def marathon_mesos_master(url: str, config: Config) -> MasterService | None:
    target = master_url_of(url)
    if target is None:
        return None

    async def running_master(
        *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started(target)
        await trio.sleep_forever()

    return running_master
