"""Triton python-backend model: one GRU step (model.onnx, run by onnxruntime) over a batch of requests.

Copied verbatim into <repository>/<model>/<version>/model.py by workloads.sequences.repository.build.

Stateful (the config has `sequence_batching`): the batcher adds the control inputs START/END/READY/CORRID to every
request; the hidden state of each sequence lives here, keyed by its correlation id: zeros on START, dropped on END.
A slot with READY=0 (a direct-strategy batch slot holding no request) gets zeros and touches no state.
Outputs Y and STEP (how many steps of its sequence this request is, 1 on START).

Stateless (no `sequence_batching`): inputs X and H_IN, outputs Y and H_OUT; the client carries the state.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # one thread per instance: a 2-core host is shared
        so.inter_op_num_threads = 1
        here = os.path.join(args["model_repository"], args["model_version"])
        self.sess = ort.InferenceSession(os.path.join(here, "model.onnx"), so, providers=["CPUExecutionProvider"])
        self.hidden = int(self.sess.get_inputs()[1].shape[1])
        seq = cfg.get("sequence_batching")
        self.stateful = seq is not None
        self.controls = {}
        if self.stateful:
            for ci in seq.get("control_input", []):
                for c in ci.get("control", []):
                    self.controls[c["kind"]] = ci["name"]
        self.states = {}  # correlation id -> (hidden state [HIDDEN], steps so far)

    def _control(self, request, kind, default):
        name = self.controls.get(kind)
        t = pb_utils.get_input_tensor_by_name(request, name) if name else None
        if t is None:
            return default
        v = t.as_numpy().reshape(-1)[0]
        return v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v

    def execute(self, requests):
        xs = [pb_utils.get_input_tensor_by_name(r, "X").as_numpy() for r in requests]
        if not self.stateful:
            hs = [pb_utils.get_input_tensor_by_name(r, "H_IN").as_numpy() for r in requests]
            sizes = [x.shape[0] for x in xs]
            y, h = self.sess.run(["Y", "H_OUT"], {"X": np.concatenate(xs), "H_IN": np.concatenate(hs)})
            out, start = [], 0
            for n in sizes:
                part = slice(start, start + n)
                out.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[pb_utils.Tensor("Y", y[part]), pb_utils.Tensor("H_OUT", h[part])]
                    )
                )
                start += n
            return out
        keys, hs, steps, errors = [], [], [], {}
        for i, r in enumerate(requests):
            ready = self._control(r, "CONTROL_SEQUENCE_READY", 1)
            key = self._control(r, "CONTROL_SEQUENCE_CORRID", None)
            if not ready:
                keys.append(None)
                hs.append(np.zeros((1, self.hidden), np.float32))
                steps.append(0)
                continue
            if self._control(r, "CONTROL_SEQUENCE_START", 0):
                state, n = np.zeros(self.hidden, np.float32), 0
            elif key in self.states:
                state, n = self.states[key]
            else:  # the batcher let a non-START request through with no state here (cannot happen with CORRID)
                errors[i] = f"sequence {key}: no state (its first request had no START flag)"
                state, n = np.zeros(self.hidden, np.float32), 0
            keys.append(key)
            hs.append(state[None, :])
            steps.append(n + 1)
        y, h = self.sess.run(["Y", "H_OUT"], {"X": np.concatenate(xs), "H_IN": np.concatenate(hs)})
        out = []
        for i, r in enumerate(requests):
            if i in errors:
                out.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i])))
                continue
            if keys[i] is not None:
                if self._control(r, "CONTROL_SEQUENCE_END", 0):
                    self.states.pop(keys[i], None)
                else:
                    self.states[keys[i]] = (h[i].copy(), steps[i])
            out.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("Y", y[i : i + 1]),
                        pb_utils.Tensor("STEP", np.array([[steps[i]]], np.int32)),
                    ]
                )
            )
        return out
