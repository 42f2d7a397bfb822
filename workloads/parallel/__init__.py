"""Multi-GPU communication experiments (NCCL through CuPy and torch.distributed)."""
