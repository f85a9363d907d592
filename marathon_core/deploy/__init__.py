"""Deployments: plans from one root group to another, and their execution.

``planner`` computes Marathon's plan (stop, start, then dependency-ordered scale and
restart steps); ``manager`` is the one writer of the root group and keeps the registry
of unfinished deployments; ``executor`` runs them, including the rolling-restart
arithmetic (:func:`~marathon_core.deploy.executor.rolling_targets`).
"""
