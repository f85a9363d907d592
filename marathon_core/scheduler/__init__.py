"""The scheduler: instances and their tasks, the launch queue, offers, kills, reconciliation.

``tracker.InstanceTracker`` is the in-memory view of every instance and the one
writer of instance state; ``scheduler.Scheduler`` drives it from Mesos events and
its own timers. Pure pieces (backoff math, offer matching, TaskInfo building) live
in their own modules and are tested without Mesos.
"""

from __future__ import annotations
