"""AI Infra Lab control plane: catalogue, runner, results, reports, local platform and cluster stacks."""

__version__ = "0.1.0"
