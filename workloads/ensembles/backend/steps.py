"""Triton python-backend model for the ensemble's CPU steps; `parameters { key: "op" }` in config.pbtxt picks one:

- normalize: raw 8x8 digit images, uint8 0..16 [B, 8, 8] -> float32 [B, 1, 28, 28] in [0, 1]: scaled and upsampled
  bilinearly (half-pixel centres), exactly the MLP's training preprocessing (workloads/models/data.py `preprocess`)
- softmax: logits float32 [B, 10] -> probabilities float32 [B, 10]
- topk: probabilities float32 [B, 10] -> the k best classes int64 [B, k] and their probabilities float32 [B, k]
- fused: normalize, the MLP (model.onnx with onnxruntime) and softmax in one model: the single-model baseline

Copied into <repository>/<model>/<version>/model.py by workloads.serving.repository.build_repository. Requests
are concatenated along the batch axis and run in one call; results are split back in order.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils

SOURCE, SIZE = 8, 28


def bilinear(n_in, n_out):
    # the same weights as workloads/models/data.py's _bilinear_matrix, on purpose a copy: this file runs inside
    # Triton's python-backend stub, which does not import the lab's packages (the ensemble test checks the outputs)
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in), dtype=np.float64)
    w[np.arange(n_out), lo] += 1.0 - frac
    w[np.arange(n_out), hi] += frac
    return w


W = bilinear(SOURCE, SIZE)


def normalize(images):
    x = images.astype(np.float64) / 16.0
    up = np.einsum("oi,nij,pj->nop", W, x, W)
    return np.clip(up, 0.0, 1.0).astype(np.float32)[:, None, :, :]


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in cfg.get("parameters", {}).items()}
        self.op = params["op"]
        self.k = int(params.get("k", "3"))
        self.inputs = [i["name"] for i in cfg["input"]]
        self.outputs = [o["name"] for o in cfg["output"]]
        if self.op == "fused":
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
            so.inter_op_num_threads = 1
            here = os.path.join(args["model_repository"], args["model_version"])
            self.sess = ort.InferenceSession(os.path.join(here, "model.onnx"), so, providers=["CPUExecutionProvider"])

    def _run(self, x):
        if self.op == "normalize":
            return [normalize(x)]
        if self.op == "softmax":
            return [softmax(x)]
        if self.op == "topk":
            idx = np.argsort(-x, axis=1, kind="stable")[:, : self.k]
            return [idx.astype(np.int64), np.take_along_axis(x, idx, axis=1).astype(np.float32)]
        if self.op == "fused":
            (logits,) = self.sess.run(None, {"input": normalize(x)})
            return [softmax(logits)]
        raise ValueError(f"op {self.op!r}: allowed normalize, softmax, topk, fused")

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, self.inputs[0]).as_numpy() for r in requests]
        sizes = [a.shape[0] for a in arrays]
        try:
            outs = self._run(np.concatenate(arrays))
        except Exception as exc:  # noqa: BLE001 - reported to every client of this batch instead of crashing the stub
            err = pb_utils.TritonError(f"{self.op} failed: {exc}")
            return [pb_utils.InferenceResponse(error=err) for _ in requests]
        responses, start = [], 0
        for n in sizes:
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(o[start : start + n]))
                for name, o in zip(self.outputs, outs, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += n
        return responses
