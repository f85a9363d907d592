"""An IN_SET placement operator for marathon-core."""
