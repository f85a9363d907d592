"""The Mesos v1 scheduler HTTP client: RecordIO, typed calls, subscription, detection."""

from __future__ import annotations
