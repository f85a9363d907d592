"""``python -m marathon_mesos_local.agent``: run one agent process."""

from __future__ import annotations

import sys

from marathon_mesos_local.agent.process import main

sys.exit(main())
