"""marathon-constraints: Marathon's placement constraint operators as a marathon-core plugin.

The logic lives in :mod:`marathon_constraints.operators`; :mod:`marathon_constraints.plugin`
only holds the hook implementation that the ``marathon`` entry point names.
"""

from __future__ import annotations

__version__ = "0.1.0"
