"""Test support for marathon-core and its plugins.

``pytest_plugin`` holds the fixtures (registered as the ``marathon`` pytest11
entry point); ``zookeeper`` starts real ZooKeeper servers.  Nothing here is
imported by the server itself.
"""

from __future__ import annotations
