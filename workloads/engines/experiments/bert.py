"""BERT deployment (d19.e1–e5): a BERT-base-shaped encoder from a transformers BertConfig (random weights),
ONNX Runtime baseline, the GPU path (FP16, compiled) in place of a TensorRT engine, batch and sequence sweeps,
and FP16 vs INT8 on a small BERT trained here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params

Part = Literal["onnx_baseline", "engine_vs_baseline", "batch_sweep", "seq_sweep", "fp16_vs_int8"]


class BertParams(Params):
    parts: list[Part] = Field(min_length=1)
    shape: Literal["base", "tiny"] = Field("base", description="base = BERT-base (768 x 12 layers); tiny for tests")
    batches: list[int] = Field([1, 8, 16], min_length=1)
    seqs: list[int] = Field([32, 128, 512], min_length=1)
    seq: int = Field(128, gt=0, description="sequence length of the batch sweep and the baseline")
    batch: int = Field(8, gt=0, description="batch of the sequence sweep")
    ort_threads: int = Field(8, gt=0)
    train_steps: int = Field(300, gt=0, description="steps to train the small BERT on the marker task")
    iters: int = Field(30, gt=0)


def bert_study(ctx: Context, p: BertParams) -> Output:
    import os

    import torch

    from workloads.engines import bert
    from workloads.engines.precision import tf32_mode, with_precision
    from workloads.engines.tables import table, tensorrt_substitute
    from workloads.engines.timing import time_calls, wall_once

    dev = ctx.device
    shape = bert.BASE if p.shape == "base" else bert.TINY
    out = Output(
        substitute=tensorrt_substitute(
            "ONNX Runtime CPU as the baseline; on the GPU PyTorch FP16 eager and torch.compile (Inductor) for the "
            "engine, W8A8 torch._int_mm for INT8"
        )
    )
    fp32 = bert.Logits(bert.model(shape, dev))
    half = bert.Logits(bert.model(shape, dev).half()) if dev == "cuda" else fp32
    if "onnx_baseline" in p.parts or "engine_vs_baseline" in p.parts:
        import onnxruntime as ort

        from workloads.engines.onnx_export import export

        ids, mask = bert.inputs(1, p.seq, "cpu")
        cpu_model = bert.Logits(bert.model(shape, "cpu"))
        path, export_s = wall_once(
            lambda: export(
                cpu_model,
                (ids, mask),
                ctx.workdir / "bert.onnx",
                ["input_ids", "attention_mask"],
                ["logits"],
                {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "logits": {0: "batch"}},
            ),
            "cpu",
        )
        so = ort.SessionOptions()
        so.intra_op_num_threads = p.ort_threads
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        with torch.no_grad():
            err = float(abs(sess.run(None, feeds)[0] - cpu_model(ids, mask).numpy()).max())
        ort_lat = time_calls(lambda: sess.run(None, feeds), "cpu", warmup=2, iters=max(5, p.iters // 3))
        rows = [
            {
                "runtime": f"ONNX Runtime CPU ({p.ort_threads} threads)",
                "batch": 1,
                "seq": p.seq,
                "p50_ms": ort_lat.p50_ms,
                "p95_ms": ort_lat.p95_ms,
                "max_abs_err_vs_torch": err,
                "onnx_mib": path.stat().st_size / 2**20,
                "export_s": export_s,
            }
        ]
        if "engine_vs_baseline" in p.parts and dev == "cuda":
            gids, gmask = ids.to(dev), mask.to(dev)
            comp = torch.compile(half, dynamic=False)
            with torch.no_grad():
                _, comp_s = wall_once(lambda: comp(gids, gmask), dev)
                ref = fp32(gids, gmask).float()
                for name, fn in (
                    ("PyTorch FP32 eager (GPU)", lambda: fp32(gids, gmask)),
                    ("PyTorch FP16 eager (GPU)", lambda: half(gids, gmask)),
                    ("torch.compile FP16 (GPU)", lambda: comp(gids, gmask)),
                ):
                    with tf32_mode("fp32"):
                        lat = time_calls(fn, dev, warmup=3, iters=p.iters)
                        e = float((fn().float() - ref).abs().max())
                    rows.append(
                        {
                            "runtime": name,
                            "batch": 1,
                            "seq": p.seq,
                            "p50_ms": lat.p50_ms,
                            "p95_ms": lat.p95_ms,
                            "max_abs_err_vs_torch": e,
                            "onnx_mib": None,
                            "export_s": comp_s if "compile" in name else None,
                        }
                    )
        for r in rows:
            r["speedup_vs_ort"] = round(rows[0]["p50_ms"] / r["p50_ms"], 2)
        out.tables.append(
            table(
                "baseline",
                rows,
                caption=f"BERT-{p.shape} shape, random weights, batch 1, seq {p.seq}; "
                "export_s = ONNX export (ORT row) or compile time (compiled row); error vs PyTorch "
                "FP32 of the same weights",
            )
        )
        out.notes.append(f"CPU: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    sweeps = []
    if "batch_sweep" in p.parts:
        sweeps += [("batch_sweep", b, p.seq) for b in p.batches]
    if "seq_sweep" in p.parts:
        sweeps += [("seq_sweep", p.batch, s) for s in p.seqs]
    rows_by: dict[str, list[dict]] = {}
    for name, b, s in sweeps:
        ids, mask = bert.inputs(b, s, dev)
        with torch.no_grad():
            lat = time_calls(lambda ids=ids, mask=mask: half(ids, mask), dev, warmup=3, iters=p.iters)
        rows_by.setdefault(name, []).append(
            {
                "precision": "fp16" if dev == "cuda" else "fp32",
                "batch": b,
                "seq": s,
                "p50_ms": lat.p50_ms,
                "p95_ms": lat.p95_ms,
                "sequences_per_s": lat.throughput(b),
                "tokens_per_s": lat.throughput(b * s),
            }
        )
    for name, rows in rows_by.items():
        out.tables.append(
            table(
                name,
                rows,
                caption=f"BERT-{p.shape} shape, eager {rows[0]['precision']} with SDPA "
                "attention, all-ones attention mask",
            )
        )
    if "fp16_vs_int8" in p.parts:
        small = bert.trained("small" if p.shape == "base" else "tiny", dev, p.train_steps)
        rows = []
        ids, mask = bert.inputs(p.batch, p.seq, dev)
        precs = ["fp32", "fp16", "int8"] if dev == "cuda" else ["fp32", "int8"]
        for prec in precs:
            m, _ = with_precision(small.model, prec, dev)
            mb, _ = with_precision(fp32.bert, prec, dev)
            with torch.no_grad(), tf32_mode(prec):
                pred = m(input_ids=small.x_test).logits.argmax(1).cpu()
                lat = time_calls(lambda mb=mb: mb(input_ids=ids, attention_mask=mask), dev, warmup=3, iters=p.iters)
            rows.append(
                {
                    "precision": prec,
                    "task_accuracy_pct": float((pred == small.y_test).float().mean() * 100),
                    "base_batch": p.batch,
                    "base_seq": p.seq,
                    "base_p50_ms": lat.p50_ms,
                }
            )
        for r in rows:
            r["speedup_vs_fp32"] = round(rows[0]["base_p50_ms"] / r["base_p50_ms"], 3)
        out.tables.append(
            table(
                "fp16_vs_int8",
                rows,
                caption="accuracy on the held-out marker task of a small BERT "
                f"(trained here, {p.train_steps} steps, train accuracy {small.train_acc_pct:.1f} %); "
                f"latency of the BERT-{p.shape} shape; INT8 = W8A8 linears via torch._int_mm",
            )
        )
    return out
