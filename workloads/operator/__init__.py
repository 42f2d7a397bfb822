"""A small Kubernetes operator (d44): the ModelDeployment CRD and its kopf controller."""
