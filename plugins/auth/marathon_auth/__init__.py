"""HTTP Basic and bearer-token authentication, and path-based authorization, for marathon."""
