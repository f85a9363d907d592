"""Built-in plugin: ``--master`` values that name running Mesos masters.

``http://host:5050``, ``https://host:5050`` and ``host:5050`` name one master;
``zk://h1:2181,h2:2181/mesos`` names the ZooKeeper group Mesos masters are elected
in, and the Mesos client looks up the leading master there before every subscription
(:func:`marathon_core.mesos.detector.detect_master`). The embedded cluster behind
``local`` comes from the ``marathon-mesos-local`` plugin.
"""

from __future__ import annotations

import trio

from marathon_core import hookimpl
from marathon_core.config import Config
from marathon_core.contracts.services import MasterService
from marathon_core.mesos.detector import master_url_of, parse_zk_url


@hookimpl(trylast=True)  # asked last, so a plugin may claim any form of --master first
def marathon_mesos_master(url: str, config: Config) -> MasterService | None:
    if url.startswith("zk://"):
        parse_zk_url(url)  # a malformed one stops the server now, with the reason
        target = url
    else:
        direct = master_url_of(url)
        if direct is None:
            return None
        target = direct

    async def running_master(
        *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started(target)
        await trio.sleep_forever()

    return running_master
