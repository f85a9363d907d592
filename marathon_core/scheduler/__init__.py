"""The scheduler: instances and their tasks, the launch queue, offers, kills, reconciliation.

``tracker.InstanceTracker`` is the in-memory view of every instance and the one
writer of instance state; ``scheduler.Scheduler`` wires the parts that drive it from
Mesos events and timers (status updates, launches, offer demand, kills, timers,
reconciliation, the scale check, the ``/v2/queue`` view), one module each. Pure
pieces (backoff math, offer matching, TaskInfo building, the unreachable strategy)
live in their own modules and are tested without Mesos.
"""

from __future__ import annotations
