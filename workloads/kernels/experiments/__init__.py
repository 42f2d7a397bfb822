"""Runners of the CUDA experiments (d08-d11, d23, d37, d64, d65), one idea per module; bound in ../bindings.yaml.

- harness_cases: rows of named cases of a harness binary (cuda/bench) as tables, plots, targets, resource usage
- sanitizer: an out-of-bounds kernel run plain and under compute-sanitizer
- ncu_profile: ncu metrics of the kernels of one case
- timelines: CUPTI traces of the stream and graph programs, cut on marker kernels
- convolution: the 3x3 convolutions against direct or cuDNN, with the GEMM goal on LLM shapes
- derived_gemm: another experiment's GEMM sweep at one size, re-presented (derived, not measured)
"""
