"""What runs only while this process leads: the term, health checks, the leader's control.

Everything here lives inside the leadership-scoped nursery and is cancelled with it
when leadership ends (:func:`marathon_core.leader.term.leadership_term`). What runs
always (the state store, the election, the event bus, the plugins' services) lives
at the top of :mod:`marathon_core`.
"""
