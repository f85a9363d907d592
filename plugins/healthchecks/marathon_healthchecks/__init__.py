"""Marathon's health checks for marathon-core (see ``marathon_healthchecks.protocols``)."""

__version__ = "0.1.0"
