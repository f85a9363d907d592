"""The Mesos master: the v1 scheduler HTTP API, an allocator, and the agent registry.

Everything the master knows lives in plain objects mutated only from trio tasks of
one run (no locks needed). Scheduler calls are checked in the order real Mesos 1.x
checks them (method, content type, the body as a Call, the call's own rules, then
the subscription: stream id and framework) and answered
with the same status codes and plain-text bodies; their effects are applied before
the ``202`` is sent and reported as events on the framework's RecordIO stream.

Master-to-agent traffic (libprocess in real Mesos) is JSON over HTTP on loopback:
agents ``POST /_local/agents/register``, ``/_local/agents/unregister``,
``/_local/agents/status`` and ``/_local/agents/executor_exited``; the master sends
``run_task``, ``run_task_group``, ``kill_task``, ``acknowledge``, ``shutdown_executor``,
``shutdown_framework`` and ``framework_message`` to each agent through one ordered
outbox per agent.

Failover: the admitted and unreachable agents are kept in a registry (see
:mod:`.registry`). A master started on an existing registry waits
``--agent_reregister_timeout`` for the agents in it to re-register with their tasks
and marks the others unreachable; frameworks come back through the agents that run
their tasks and by re-subscribing with their ids, as in Mesos's ``Master::recover``.

The parts, each owning one concern (a part imports only parts above it):

* :mod:`.registry` -- the admitted and unreachable agents, stored;
* :mod:`.model` -- the options and the records: frameworks, agents, tasks, offers;
* :mod:`.books` -- the records, cross-indexed, and the moves that keep them so;
* :mod:`.offers` -- the allocator: fair offers, decline filters, offer timeouts;
* :mod:`.validation` -- what Mesos finds wrong with a task, a task group, an executor;
* :mod:`.launch` -- ACCEPT: LAUNCH and LAUNCH_GROUP;
* :mod:`.frameworks` -- SUBSCRIBE, the event streams, failover, UPDATE_FRAMEWORK, teardown;
* :mod:`.tasks` -- task calls (KILL, ACKNOWLEDGE, RECONCILE, ...) and agents' reports;
* :mod:`.links` -- the outbox and the pings of each agent;
* :mod:`.reregistration` -- what a re-registering agent runs against what is known;
* :mod:`.agents` -- agents joining, re-registering, leaving and being lost;
* :mod:`.state` and :mod:`.operator` -- ``/master/state`` and the operator API;
* :mod:`.scheduler_api` -- the scheduler endpoint: checks, then one handler per call;
* :mod:`.server` -- :class:`~.server.Master`, which wires them and routes HTTP.
"""
