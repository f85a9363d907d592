"""The "machine" an agent runs on: one process group that holds the agent and its tasks.

``python -m marathon_mesos_local.host --work_dir DIR -- <agent command>`` is started
in a session of its own. It runs the agent in its process group (tasks stay in that
group too), so ``killpg(host, SIGKILL)`` takes down the agent and every task at once,
as pulling a machine's power cord would. Meanwhile it plays the part of the machine's
service manager and init:

* it restarts the agent when the agent dies without being asked to stop (a crash, or
  a test's SIGKILL), so the agent can recover its tasks from its checkpoints;
* it is the child subreaper of everything below it: task processes orphaned by a dead
  agent are reaped here, and their wait status is written to ``<work_dir>/meta/exits/
  <pid>`` for the agent that recovers them;
* SIGTERM/SIGINT (or the death of its own parent) is passed to the agent, which stops
  its tasks; whatever is left of the group is then SIGKILLed and the host exits.

Every boot gets a fresh ``boot_id`` (passed to the agent as ``--boot_id``): an agent
that finds checkpoints of another boot knows the machine was restarted and does not
try to recover its tasks, as a Mesos agent does after a reboot.

Standard library only, no trio: the host has to stay small and start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

PR_SET_CHILD_SUBREAPER = 36
#: Restart delays after an agent death: doubling from the first to the last.
RESTART_DELAY_MIN = 0.05
RESTART_DELAY_MAX = 5.0
#: How long the agent gets to stop its tasks after SIGTERM before the group is killed.
STOP_TIMEOUT = 5.0
_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _set_subreaper() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _unblock() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _status_text(status: int) -> str:
    """A wait status as the agent reads it back: ``exit N`` or ``signal N``."""
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


class Host:
    def __init__(self, work_dir: Path, agent_argv: Sequence[str]) -> None:
        self.work_dir = work_dir
        self.exits = work_dir / "meta" / "exits"
        self.boot_id = str(uuid.uuid4())
        self.agent_argv = [
            *agent_argv, "--boot_id", self.boot_id, "--parent_pid", str(os.getpid()),
        ]  # fmt: skip
        self.agent: subprocess.Popen[bytes] | None = None
        self.parent = os.getppid()
        self.stopping = False
        self.delay = RESTART_DELAY_MIN
        self.restart_at: float | None = None
        self.started = time.monotonic()

    def start_agent(self) -> None:
        self.agent = subprocess.Popen(
            self.agent_argv, stdin=subprocess.DEVNULL, preexec_fn=_unblock
        )
        self.started = time.monotonic()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.agent is not None and pid == self.agent.pid:
                self.agent.returncode = os.waitstatus_to_exitcode(status)
                self.agent_exited()
            else:
                self.record_exit(pid, status)

    def record_exit(self, pid: int, status: int) -> None:
        with contextlib.suppress(OSError):
            self.exits.mkdir(parents=True, exist_ok=True)
            tmp = self.exits / f".{pid}.tmp"
            tmp.write_text(_status_text(status))
            tmp.rename(self.exits / str(pid))

    def agent_exited(self) -> None:
        if self.stopping:
            return
        if time.monotonic() - self.started > 10.0:
            self.delay = RESTART_DELAY_MIN
        print(f"host: agent exited ({self.agent.returncode if self.agent else '?'}); "
              f"restarting in {self.delay:.2f}s", file=sys.stderr, flush=True)  # fmt: skip
        self.restart_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, RESTART_DELAY_MAX)
        self.agent = None

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.restart_at = None
        if self.agent is not None and self.agent.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.agent.send_signal(signal.SIGTERM)

    def agent_running(self) -> bool:
        return self.agent is not None and self.agent.returncode is None

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        _set_subreaper()
        self.start_agent()
        deadline: float | None = None
        while True:
            info = signal.sigtimedwait(_SIGNALS, 0.2)
            if info is not None and info.si_signo != signal.SIGCHLD:
                self.stop()
            self.reap()
            if not self.stopping and os.getppid() != self.parent:
                print("host: parent is gone; stopping", file=sys.stderr, flush=True)
                self.stop()
            now = time.monotonic()
            if self.restart_at is not None and now >= self.restart_at:
                self.restart_at = None
                self.start_agent()
            if self.stopping:
                deadline = deadline or now + STOP_TIMEOUT
                if not self.agent_running() or now >= deadline:
                    break
        # Power down whatever is left of the machine, this process last.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _unblock()
        os.killpg(os.getpgrp(), signal.SIGKILL)
        return 0  # pragma: no cover - the line above ends this process


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marathon_mesos_local.host")
    parser.add_argument("--work_dir", required=True, type=Path)
    parser.add_argument("agent", nargs=argparse.REMAINDER, help="-- agent command line")
    args = parser.parse_args(argv)
    agent = args.agent[1:] if args.agent[:1] == ["--"] else args.agent
    if not agent:
        parser.error("the agent command line is missing")
    return Host(args.work_dir, agent).run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
