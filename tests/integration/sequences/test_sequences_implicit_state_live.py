"""Why the GRU keeps its own state: on tritonserver 2.51 the python backend is handed Triton's implicit state input
(`sequence_batching.state`) but the state output it returns is not kept for the sequence's next request. A counter
model shows it on a real server: if Triton kept the state, the counter would grow 1, 2, 3, ...; it does not.
(Should a later server keep it, this test fails and the GRU could move its state into Triton.)"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from google.protobuf import text_format

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.sequences.config import SequenceBatching, State
from workloads.sequences.repository import config, stateful

pytestmark = pytest.mark.integration

COUNTER = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            start = pb_utils.get_input_tensor_by_name(r, "START").as_numpy().ravel()[0]
            h = pb_utils.get_input_tensor_by_name(r, "H_STATE_IN")
            seen = h is not None
            count = (0.0 if start or not seen else float(h.as_numpy().ravel()[0])) + 1.0
            # what arrives when the state was not kept is not specified (zeros or stale memory): -2 for a value
            # that no counter could hold
            step = -1 if not seen else (int(count) if np.isfinite(count) and 0 < count < 1e6 else -2)
            out.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("Y", np.zeros((1, 4), np.float32)),
                pb_utils.Tensor("STEP", np.array([[step]], np.int32)),
                pb_utils.Tensor("H_STATE_OUT", np.full((1, 32), count, np.float32)),
            ]))
        return out
"""


def test_python_backend_gets_the_state_input_but_triton_does_not_keep_its_output(tmp_path):
    m = stateful(
        "counter", SequenceBatching("oldest", states=(State("H_STATE_IN", "H_STATE_OUT", "TYPE_FP32", (32,)),))
    )
    repo = tmp_path / "repo"
    (repo / "counter" / "1").mkdir(parents=True)
    (repo / "counter" / "config.pbtxt").write_text(text_format.MessageToString(config(m)))
    (repo / "counter" / "1" / "model.py").write_text(COUNTER)
    ctx = Context(experiment_id="state", device="cpu", quick=True, workdir=tmp_path, platform=local_platform)
    opts = {"triton.model_repository": repo, "triton.model_control_mode": "none"}
    with ctx.platform(services=["triton"], state_dir=tmp_path / "state", options=opts) as p:
        c = grpcclient.InferenceServerClient(p.address("triton", "grpc"))
        x = grpcclient.InferInput("X", [1, 8], "FP32")
        x.set_data_from_numpy(np.ones((1, 8), np.float32))
        steps = [
            int(c.infer("counter", [x], sequence_id=7, sequence_start=k == 0).as_numpy("STEP").ravel()[0])
            for k in range(4)
        ]
        c.close()
    assert -1 not in steps  # the model is handed the state input
    assert steps[0] == 1
    assert steps[1:] != [2, 3, 4]  # ... but what it returns as H_STATE_OUT is not fed back
