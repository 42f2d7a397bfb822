"""Triton Python-backend model: TEXT (BYTES) -> IDS (INT64, padded to seq_len), LENGTH, FEATURES (hashed n-grams).

Tokenizes with Hugging Face `tokenizers` (tokenizer.json beside this file, trained by workloads/backends/corpus.py),
then runs the post-processing hot loop with the implementation named by the config parameter `impl`
(python | numba | cython | cpp; see ngram.py, copied beside this file). Parameters: impl, build_dir (compiled
extensions), seq_len, n_max, buckets. Runs inside triton_python_backend_stub: one process per instance.
"""

import json
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core per instance: the GIL experiment counts on it

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ngram  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in cfg.get("parameters", {}).items()}
        self.seq_len = int(params["seq_len"])
        self.n_max = int(params["n_max"])
        self.buckets = int(params["buckets"])
        self.tok = Tokenizer.from_file(os.path.join(HERE, "tokenizer.json"))
        self.tok.enable_truncation(self.seq_len)
        self.impl = ngram.load(params["impl"], params.get("build_dir") or None)
        ids, offsets = ngram.to_csr([[1, 2, 3]])
        self.impl(ids, offsets, self.n_max, self.buckets)  # Numba compiles here, not in the first request

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(self._one(request))
            except ValueError as exc:  # this request's input is bad; the others in the batch still get answers
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
        return responses

    def _one(self, request):
        text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
        try:
            strings = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in text]
        except UnicodeDecodeError as exc:
            raise ValueError(f"input TEXT: element is not UTF-8 ({exc}); send UTF-8 encoded strings") from exc
        rows = [e.ids for e in self.tok.encode_batch(strings)]
        ids = np.zeros((len(rows), self.seq_len), dtype=np.int64)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = row
        lengths = np.array([[len(r)] for r in rows], dtype=np.int32)
        flat, offsets = ngram.to_csr(rows)
        feats = self.impl(flat, offsets, self.n_max, self.buckets)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("IDS", ids),
                pb_utils.Tensor("LENGTH", lengths),
                pb_utils.Tensor("FEATURES", feats),
            ]
        )
