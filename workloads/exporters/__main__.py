"""`python -m workloads.exporters --port 9108`: the lab exporter (NVML GPU metrics, host fallback)."""

from workloads.exporters.server import main

if __name__ == "__main__":
    main()
