"""Triton python-backend model: runs an ONNX file with onnxruntime (CPU) or a TorchScript file with torch (CPU/CUDA).

Copied verbatim into <repository>/<model>/<version>/model.py by workloads.serving.repository.build_repository.
Configuration comes from config.pbtxt `parameters`: runtime ("onnxruntime" | "torch"), intra_op_threads.
Dynamic batching hands execute() several requests at once: they are concatenated along the batch axis, run
in one call, and the result is split back per request in the same order.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in cfg.get("parameters", {}).items()}
        self.inputs = [i["name"] for i in cfg["input"]]
        self.outputs = [(o["name"], pb_utils.triton_string_to_numpy(o["data_type"])) for o in cfg["output"]]
        self.batched = int(cfg.get("max_batch_size", 0)) > 0
        here = os.path.join(args["model_repository"], args["model_version"])
        self.runtime = params.get("runtime", "onnxruntime")
        threads = int(params.get("intra_op_threads", "1"))
        if self.runtime == "torch":
            import torch

            gpu = args.get("model_instance_kind") == "GPU"
            self.device = f"cuda:{args['model_instance_device_id']}" if gpu else "cpu"
            torch.set_num_threads(threads)
            self.torch = torch
            self.model = torch.jit.load(os.path.join(here, "model.pt"), map_location=self.device).eval()
        else:
            import onnxruntime as ort

            so = ort.SessionOptions()
            # One thread per instance: several instances on a 2-core host would otherwise oversubscribe the CPU.
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            self.sess = ort.InferenceSession(os.path.join(here, "model.onnx"), so, providers=["CPUExecutionProvider"])

    def _run(self, feeds):
        if self.runtime == "torch":
            with self.torch.inference_mode():
                args = [self.torch.from_numpy(feeds[n]).to(self.device) for n in self.inputs]
                out = self.model(*args)
                outs = out if isinstance(out, (tuple, list)) else (out,)
                return [o.cpu().numpy() for o in outs]
        return self.sess.run([n for n, _ in self.outputs], feeds)

    def execute(self, requests):
        arrays = [[pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs] for r in requests]
        if self.batched:
            sizes = [a[0].shape[0] for a in arrays]
            feeds = [{n: np.concatenate([a[i] for a in arrays]) for i, n in enumerate(self.inputs)}]
        else:  # no batch axis to concatenate along: one run per request
            sizes = [None] * len(arrays)
            feeds = [dict(zip(self.inputs, a, strict=False)) for a in arrays]
        try:
            results = [self._run(f) for f in feeds]
        except Exception as exc:  # noqa: BLE001 - reported to every client of this batch instead of crashing the stub
            err = pb_utils.TritonError(f"{self.runtime} failed: {exc}")
            return [pb_utils.InferenceResponse(error=err) for _ in requests]
        responses = []
        start = 0
        for k, size in enumerate(sizes):
            outs = results[0] if self.batched else results[k]
            part = slice(start, start + size) if self.batched else slice(None)
            tensors = [
                pb_utils.Tensor(n, np.ascontiguousarray(o[part].astype(t, copy=False)))
                for (n, t), o in zip(self.outputs, outs, strict=False)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size or 0
        return responses
