"""d17.e1, d38.e1: deploy the normalize -> MLP -> softmax ensemble on the local tritonserver and check its answers
against the same computation done in this process with numpy and onnxruntime."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from ailab.contract import Context, Output, Params, Table


class PipelineParams(Params):
    images: Annotated[int, Strict(), Field(ge=1, le=4096, description="digits sent through each model")] = 256
    batch: Annotated[int, Strict(), Field(ge=1, le=64, description="images per request")] = 8


def ensemble_pipeline(ctx: Context, p: PipelineParams) -> Output:
    """Build the ensemble from typed specs, serve it, and compare every answer with softmax(mlp(normalize(x)))."""
    import numpy as np

    from workloads.ensembles.pipeline import K, pipeline_specs, raw_images, reference
    from workloads.serving import harness, metrics
    from workloads.serving.client import Client
    from workloads.serving.common import host_note

    at_start = host_note()
    specs = pipeline_specs()
    steps = Table.of(
        "ensemble_scheduling",
        [("ensemble", ""), ("step", ""), ("model", ""), ("input_map", "model input <- tensor"),
         ("output_map", "model output -> tensor"), ("backend", "")],
        caption="The ensembles' steps as generated into config.pbtxt (Triton's ModelConfig protobuf, platform "
        "'ensemble'); every step model is a python-backend model on CPU",
    )  # fmt: skip
    by_name = {s.name: s for s in specs}
    for s in specs:
        for i, st in enumerate(s.ensemble):
            sub = by_name[st.model]
            kind = "onnxruntime (MLP)" if sub.source == "mlp" else f"python: {sub.parameters.get('op', '?')}"
            steps.add(s.name, i, st.model, ", ".join(f"{k} <- {v}" for k, v in st.input_map.items()),
                      ", ".join(f"{k} -> {v}" for k, v in st.output_map.items()), kind)  # fmt: skip
    answers = Table.of(
        "answers",
        [("model", ""), ("images", ""), ("requests", ""), ("max |server - reference|", ""),
         ("same top class", "%"), ("errors", "")],
        caption="reference = softmax(mlp(normalize(x))) computed here: the lab's training preprocessing "
        "(workloads.models.data.preprocess), the same ONNX file in onnxruntime, numpy softmax",
    )  # fmt: skip
    x = raw_images(p.images, seed=1)
    ref = reference(x)
    watch = ["pipeline", "pipeline_post", "normalize", "mlp", "softmax", "topk", "fused"]
    with harness.serve(ctx, specs, warm_requests=0) as srv:
        before = {m: metrics.read(srv.metrics_url, m) for m in watch}
        with Client(srv.address("grpc"), "grpc", timeout_s=60) as c:
            for model, out_name in (("pipeline", "probs"), ("fused", "probs"), ("pipeline_post", "scores")):
                got, errors = [], 0
                labels = []
                for i in range(0, p.images, p.batch):
                    chunk = x[i : i + p.batch]
                    try:
                        out = c.infer(model, {"image": chunk})
                    except Exception as exc:  # noqa: BLE001 - counted and shown; the table says how many failed
                        errors += 1
                        ctx.log(f"{model}: {exc}")
                        continue
                    got.append(out[out_name])
                    if "labels" in out:
                        labels.append(out["labels"])
                n_req = -(-p.images // p.batch)
                if not got:
                    answers.add(model, p.images, n_req, float("nan"), float("nan"), errors)
                    continue
                arr = np.concatenate(got)
                if model == "pipeline_post":  # top-k: the classes and their probabilities must match numpy's
                    lab = np.concatenate(labels)
                    want_lab = np.argsort(-ref, axis=1, kind="stable")[:, :K]
                    diff = float(np.abs(arr - np.take_along_axis(ref, want_lab, axis=1)).max())
                    agree = 100.0 * float((lab[:, 0] == want_lab[:, 0]).mean())
                else:
                    diff = float(np.abs(arr - ref[: len(arr)]).max())
                    agree = 100.0 * float((arr.argmax(1) == ref[: len(arr)].argmax(1)).mean())
                answers.add(model, len(arr), n_req, float(f"{diff:.3g}"), round(agree, 2), errors)
        after = {m: metrics.read(srv.metrics_url, m) for m in watch}
        config_text = (srv.repo / "pipeline" / "config.pbtxt").read_text()
    counts = Table.of(
        "executions",
        [("model", ""), ("requests", ""), ("inferences", ""), ("executions", "")],
        caption="Triton's counters over the check (nv_inference_request_success, nv_inference_count, "
        "nv_inference_exec_count): each ensemble request ran each of its steps once",
    )
    for m in watch:
        d = after[m] - before[m]
        counts.add(m, int(d.request_success), int(d.inference_count), int(d.exec_count))
    ctx.log(config_text)
    notes = [
        at_start,
        "The ensemble takes raw 8x8 digits (uint8, 0..16) and returns class probabilities; the MLP between the "
        "two python steps is the Day-3 model run by onnxruntime. 'fused' does the same three steps inside one "
        "python model: the single-model baseline that d17.e2 times against the ensemble.",
        "Config checks run before the server starts (workloads/serving/modelspec.py validate_ensembles): an "
        "unknown step model, a tensor name or data type that does not match between steps, a tensor produced "
        "twice or never, and a cycle are refused naming the field (tests/unit/ensembles).",
    ]
    return Output(tables=[steps, answers, counts], notes=notes)
