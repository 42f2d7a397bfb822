"""One million active series (or the most this host sustains): memory per series in Prometheus and in
VictoriaMetrics, and disk bytes per sample of each store, against Prometheus' documented 1-2 bytes per sample
(d55.e4)."""

from __future__ import annotations

import shutil
import statistics
import time

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.monitoring_scale import stores, sweep
from workloads.monitoring_scale.synth import flat_series

DOC = "Prometheus storage docs: 'on average, Prometheus uses only around 1-2 bytes per sample'"


class StorageCostParams(Params):
    steps: list[int] = Field(default=[100_000, 300_000, 1_000_000], min_length=1, description="active series")
    scrape_interval: str = Field(default="15s", pattern=r"^[1-9][0-9]*s$", description="Prometheus scrape interval")
    scrapes: int = Field(default=4, ge=2, description="scrapes each step runs before it is read")
    disk_series: int = Field(default=10_000, ge=100, description="series of the disk-cost dataset")
    disk_hours: float = Field(default=2, gt=0, le=24, description="hours of history in the disk-cost dataset")


def storage_cost(ctx: Context, p: StorageCostParams) -> Output:
    """RSS per active series (bytes) for each store as series grow; disk bytes per sample of each store."""
    host = stores.host_note()
    interval = float(p.scrape_interval.rstrip("s"))
    mem = Table.of(
        "memory per active series",
        [("active series", "series"), ("sustained", ""), ("Prometheus head series", "series"),
         ("Prometheus RSS", "MiB"), ("Prometheus Go heap in use", "MiB"), ("Prometheus RSS per series", "bytes"),
         ("VictoriaMetrics series (this hour)", "series"), ("VictoriaMetrics RSS", "MiB"),
         ("VictoriaMetrics RSS per series", "bytes"), ("scrape duration", "s"), ("exporter render", "s")],
        caption=f"One exporter serves N counter series; Prometheus scrapes it every {p.scrape_interval} and the same "
        "exposition is imported into VictoriaMetrics at the same interval. Per-series memory = (RSS at N - RSS at "
        f"the 1000-series baseline) / (N - 1000), read after {p.scrapes} scrapes of each step. A step is sustained "
        "when every series was scraped and the target is up.",
    )  # fmt: skip
    plot = Series("RSS by active series", x=Column("active series", "series"), y=Column("RSS", "MiB"), log_x=True)
    with sweep.rig(ctx.platform, ctx.workdir / "mem", 1000, p.scrape_interval, with_vm=True) as r:
        assert r.vm_url is not None
        ppid, vpid = r.platform.record("prometheus").pid, r.platform.record("victoriametrics").pid
        sweep.wait_scrapes(r, 1000, p.scrapes, 120)
        base_p, base_v = sweep.rss_mib(ppid), sweep.rss_mib(vpid)
        mem.add(1000, "baseline", _head(r), round(base_p, 1), _heap(r), "-", int(sweep.vm_active_series(r.vm_url)),
                round(base_v, 1), "-", _scrape_s(r), "-")  # fmt: skip
        for n in p.steps:
            r.exporter.resize(n)
            r.exporter.render_s.clear()
            ok = sweep.wait_scrapes(r, n, p.scrapes, timeout_s=max(120.0, 20 * interval))
            rp, rv = sweep.rss_mib(ppid), sweep.rss_mib(vpid)
            render = round(statistics.median(r.exporter.render_s), 2) if r.exporter.render_s else "-"
            mem.add(n, "yes" if ok else "no", _head(r), round(rp, 1), _heap(r),
                    round((rp - base_p) * 2**20 / (n - 1000)), int(sweep.vm_active_series(r.vm_url)), round(rv, 1),
                    round((rv - base_v) * 2**20 / (n - 1000)), _scrape_s(r), render)  # fmt: skip
            plot.point("Prometheus", n, rp)
            plot.point("VictoriaMetrics", n, rv)
            if not ok:
                break
    disk = _disk_cost(ctx, p, interval)
    largest = max((row[0] for row in mem.rows if row[1] == "yes"), default=0)
    return Output(
        tables=[mem, disk],
        series=[plot],
        notes=[
            host,
            f"Largest active-series count sustained here: {largest} (steps asked: {p.steps}). RSS includes "
            "everything else each process holds (caches, the WAL's buffers); the Go heap column is Prometheus' own "
            "go_memstats_heap_inuse_bytes.",
            f"Disk: {DOC}. The Prometheus row is what promtool wrote as a TSDB block for the same kind of series "
            "(chunks alone and chunks + index); the VictoriaMetrics row is its data directory after a flush.",
        ],
    )


def _head(r: sweep.Rig) -> int:
    return int(r.prom.get("/api/v1/status/tsdb")["headStats"]["numSeries"])


def _heap(r: sweep.Rig) -> float:
    v = r.prom.value('go_memstats_heap_inuse_bytes{job="prometheus"}') or 0
    return round(v / 2**20, 1)


def _scrape_s(r: sweep.Rig) -> float:
    return round(r.prom.value('scrape_duration_seconds{job="synthetic"}') or 0, 2)


def _disk_cost(ctx: Context, p: StorageCostParams, interval: float) -> Table:
    """Bytes per sample of a block promtool writes and of VictoriaMetrics after importing the same samples."""
    t = Table.of(
        "disk bytes per sample",
        [("store", ""), ("samples", "samples"), ("series", "series"), ("data bytes", "bytes"),
         ("bytes per sample (data)", "bytes/sample"), ("with index", "bytes/sample"), ("documented", "bytes/sample")],
        caption=f"{p.disk_series} counter series of the exporter's shape, {p.disk_hours:g} h at {interval:g} s "
        "(the scrape interval), written once into each store; Prometheus' series are counted per block.",
    )  # fmt: skip
    series = flat_series(p.disk_series, "lab_synth_disk")
    # inside one 2 h block range (promtool cuts blocks on 2 h boundaries): one block, each series counted once
    start = (time.time() // 7200 - 4) * 7200
    end = start + p.disk_hours * 3600
    blocks = ctx.workdir / "disk" / "blocks"
    shutil.rmtree(blocks, ignore_errors=True)
    stores.backfill_prometheus(series, blocks, start, end, interval, ctx.workdir / "disk" / "om")
    samples, nseries, chunks = stores.block_stats(blocks)
    total = stores.dir_bytes(blocks)
    t.add("Prometheus TSDB block (promtool)", samples, nseries, chunks, round(chunks / samples, 3),
          round(total / samples, 3), "1-2")  # fmt: skip
    state = ctx.workdir / "disk" / "vm"
    shutil.rmtree(state, ignore_errors=True)
    with ctx.platform(services=["victoriametrics"], state_dir=state, options={}) as plat:
        url = plat.url("victoriametrics")
        stores.import_victoriametrics(url, series, start, end, interval)
        time.sleep(5)
        stores.flush_victoriametrics(url)
        size = stores.vm_metric(url, "vm_data_size_bytes")
        rows = stores.vm_metric(url, "vm_rows")
        data = sum(v for k, v in size.items() if "storage/" in k)
        index = sum(v for k, v in size.items() if "indexdb" in k)
        n = sum(v for k, v in rows.items() if "storage/" in k)
        t.add("VictoriaMetrics (after import + flush)", int(n), p.disk_series, int(data),
              round(data / n, 3) if n else "-", round((data + index) / n, 3) if n else "-", "-")  # fmt: skip
    return t
