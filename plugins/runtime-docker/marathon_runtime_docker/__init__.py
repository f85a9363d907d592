"""``container.type: DOCKER``: Marathon's Docker rules and ContainerInfo for the scheduler,
and a containerizer that runs tasks through a Docker Engine for the embedded agents."""
