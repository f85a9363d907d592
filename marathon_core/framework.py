"""The framework API: what another Mesos framework built on this core may use.

Marathon is one framework on the core; ``marathon-jobs`` (``frameworks/jobs``) is
another. A framework imports this module (besides the plugin API,
:data:`marathon_core.PLUGIN_API`) and nothing else of the core, so the Mesos client,
the election and the storage can change inside without breaking it
(``tests/test_import_structure.py`` holds every distribution under ``frameworks/`` to
it). Everything here is a re-export; the docstrings of the originals are the
reference, ``docs/writing_frameworks.md`` the guide.

Mesos (the v1 scheduler HTTP API):

* :class:`MesosClient` -- one subscription kept open (re-subscribing with the stored
  framework id, following a leading master's 307), events decoded into the typed
  values below and sent to a trio channel, calls pipelined on one connection.
* :mod:`calls` -- builders of ``Call`` messages (``accept``, ``decline``, ``kill``,
  ``acknowledge``, ``reconcile``, ``revive``, ``suppress``, ``teardown``,
  ``subscribe``), checked against the real protos.
* Events: :class:`Subscribed`, :class:`Offers` (of :class:`Offer` with
  :class:`Resource`), :class:`Update` (a :class:`TaskStatus`), :class:`Rescind`,
  :class:`Failure`, :class:`Error`, and the client's own :class:`Disconnected`.
* Finding the master: :func:`detect_master` turns ``--master`` (``http://h:5050``,
  ``h:5050`` or ``zk://h1:2181,h2:2181/mesos``) into the leading master's URL; give it
  to :class:`MesosClient` as ``find_master`` so every subscription looks again.

Leadership: :class:`LeaderElection` (``run(lead)`` runs ``lead`` only while this
process leads and cancels it when that ends; ``leader_id`` for proxying; ``fence()``
ops that make a write fail once leadership is lost), :class:`ZkElection` among
processes sharing a ZooKeeper path, :class:`SoloElection` for one process alone.

Storage: :class:`Storage`, a tree of keys holding bytes with versions and atomic
multi-op commits (:class:`Create`, :class:`Put` -- the storage's ``Update`` op, renamed
here because :class:`Update` is the Mesos event --, :class:`Delete`, :class:`Check`;
build keys with :func:`key`), on ZooKeeper (:class:`ZkStorage` over a
:class:`ZkClient` from :func:`open_zk`, one session shared with the election), in a
SQLite file (:class:`SqliteStorage`) or in memory (:class:`MemoryStorage`, tests).
"""

from __future__ import annotations

from marathon_core.election import LeaderElection, SoloElection, ZkElection, election_path
from marathon_core.mesos import calls
from marathon_core.mesos.client import CallError, MesosClient, SubscriptionError
from marathon_core.mesos.detector import MasterNotFoundError, detect_master, master_url_of
from marathon_core.mesos.events import (
    Disconnected,
    Error,
    Failure,
    MesosEvent,
    Offer,
    Offers,
    Rescind,
    Resource,
    Subscribed,
    TaskStatus,
    Update,
)
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.sqlite import SqliteStorage
from marathon_core.state.storage import (
    Check,
    Create,
    Delete,
    Entry,
    Op,
    Storage,
    key,
)
from marathon_core.state.storage import (
    Update as Put,
)
from marathon_core.state.zk.client import ZkClient, open_zk
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.state.zk.url import ZkUrl, parse_zk_url

__all__ = [
    "CallError",
    "Check",
    "Create",
    "Delete",
    "Disconnected",
    "Entry",
    "Error",
    "Failure",
    "LeaderElection",
    "MasterNotFoundError",
    "MemoryStorage",
    "MesosClient",
    "MesosEvent",
    "Offer",
    "Offers",
    "Op",
    "Put",
    "Rescind",
    "Resource",
    "SoloElection",
    "SqliteStorage",
    "Storage",
    "Subscribed",
    "SubscriptionError",
    "TaskStatus",
    "Update",
    "ZkClient",
    "ZkElection",
    "ZkStorage",
    "ZkUrl",
    "calls",
    "detect_master",
    "election_path",
    "key",
    "master_url_of",
    "open_zk",
    "parse_zk_url",
]
