"""A Mesos agent: its own OS process on its own loopback address, running tasks.

``python -m marathon_mesos_local.agent --master URL --ip 127.0.0.2 ...`` serves a
small HTTP API on ``ip:port`` for the master (``run_task``, ``run_task_group``,
``kill_task``, ``acknowledge``, ``shutdown_executor``, ``shutdown_framework``,
``framework_message``, ``ping``), registers with the master, and runs every task like
Mesos's command executor: TASK_STARTING, TASK_RUNNING, then TASK_FINISHED /
TASK_FAILED / TASK_KILLED. Each task has one status-update stream: only its head
update is in flight, resent with doubling backoff until the scheduler acknowledges it,
exactly as the agent's status update manager does.

Task groups run under a "default executor" (:class:`~.model.ExecutorRun`), which
lives in the agent process rather than in one of its own, and follows Mesos's
``src/launcher/default_executor.cpp``: each task of a group is a process of the command
containerizer; when one ends TASK_FAILED or TASK_KILLED the rest of its group is killed
(3 s grace period); when the executor's last task ends, the executor exits and the
master is told, which recovers its resources.

On SIGTERM/SIGINT (or when its parent dies) the agent kills its tasks and exits.

Checkpoints: ``<work_dir>/meta/agent.json`` (agent id and boot id) and one JSON file per
task under ``meta/tasks/<framework>/<task>.json`` (TaskInfo, container id, state, the
updates not yet acknowledged). An agent restarted on the same machine (same boot id,
see :mod:`marathon_mesos_local.host`) recovers its tasks from them instead of killing
them, re-registers with its old id and resends its pending updates. An agent that is not pinged for
``(max_agent_ping_timeouts + 2) * agent_ping_timeout``, or whose updates the master
refuses as coming from an unregistered agent, re-registers. So does one that misses a
ping and finds another master at the master's address (a failover: the new master
waits for the agents of its registry), as a Mesos agent does when its detector
reports a new leading master.

An agent that stops (SIGTERM, SIGINT, its parent's death) kills its tasks and
unregisters, as a Mesos agent shut down with SIGUSR1 does: it leaves the cluster for
good.

The parts (imports only go down this list): :mod:`.model` (options and the task and
executor records), :mod:`.store` (the task table and its checkpoints, recovery),
:mod:`.master_link` (registration, re-registration, pings, unregistration),
:mod:`.updates` (the status update streams), :mod:`.containerizers` (which
containerizer runs a task, and what it is given), :mod:`.fetcher` (a task's URIs put
into its sandbox), :mod:`.files` (``/files/browse`` and ``/files/read`` on the
sandboxes), :mod:`.lifecycle` (running tasks as
the command and the default executor do), :mod:`.server` (:class:`~.server.Agent`: the
HTTP API for the master, and the agent's run) and :mod:`.process` (the command line).
"""
