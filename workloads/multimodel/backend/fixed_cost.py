"""Triton python-backend model whose every execution holds its instance for a fixed time, like a GPU kernel of known
duration: the scheduler's queueing, rate limiting and priorities become measurable on a small CPU host, because
the waiting costs no CPU. `parameters { key: "delay_ms" }` sets the time per execution (one per dynamic batch).

input "input" float32 [B, 1, 28, 28] -> output "logits" float32 [B, 10]: the first ten pixels of each image, so a
client can check it got its own answer back. Copied into <repository>/<model>/<version>/model.py.
"""

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in cfg.get("parameters", {}).items()}
        self.delay_s = float(params.get("delay_ms", "10")) / 1e3

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, "input").as_numpy() for r in requests]
        deadline = time.perf_counter() + self.delay_s
        time.sleep(self.delay_s)
        while time.perf_counter() < deadline:  # sleep() may wake early; the cost is the fixed time, not less
            time.sleep(deadline - time.perf_counter())
        return [
            pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("logits", np.ascontiguousarray(a.reshape(a.shape[0], -1)[:, :10]))]
            )
            for a in arrays
        ]
