"""CUDA kernels of Weeks 2, 4, 6 and 10: build `cuda/`, run its benchmarks, turn their JSON lines into results."""
