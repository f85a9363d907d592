"""Deployments: plans from one root group to another, and their execution.

``planner`` computes Marathon's plan (stop, start, then dependency-ordered scale and
restart steps); ``rolling`` holds the rolling-upgrade arithmetic.
"""
