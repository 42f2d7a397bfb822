"""A ReLU C++ custom backend against Triton's backend API (d31.e1-e5): skipped with the evidence while no package
supplies the 2.51 backend headers (workloads/backends/cpp/REGISTRY-CHECK.md)."""

from __future__ import annotations

from ailab.contract import Context, Output, Skip


def cpp_backend(ctx: Context) -> Output:
    """Look for the backend API headers; without them nothing can be compiled, so the run is a skip with the reasons."""
    from workloads.backends import headers

    probe = headers.probe()
    ctx.log(probe.summary())
    if not probe.complete:
        raise Skip(
            "no package the registries hold supplies Triton's backend API headers matching the local tritonserver "
            f"2.51, so the ReLU C++ backend cannot be built: {probe.summary()} Registry look-ups (PyPI tritonserver/"
            "tritonfrontend wheels are 2.70+ and header-less, no Debian or npm package): "
            "workloads/backends/cpp/REGISTRY-CHECK.md."
        )
    raise Skip(
        f"backend API headers found ({probe.summary()}), but the lab has no ReLU backend source yet: "
        "add workloads/backends/cpp/relu and its build before this experiment can be measured"
    )
