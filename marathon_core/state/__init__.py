"""Persistent state: the storage interface, its backends, and typed repositories.

General layout: ``storage`` (the interface and ops), ``memory`` and ``sqlite``
(backends; ``zk`` joins them later), ``format`` (format marker, migrations),
``frames`` (batch encoding), ``repositories`` (generic typed repositories) and
``store`` (:class:`StateStore`, the model's repositories and combined writes).
Backends are imported from their modules so that importing this package stays
cheap.
"""

from __future__ import annotations
