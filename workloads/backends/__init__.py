"""Backends area: what a Triton Python backend costs and how its hot loop gets faster (d30, d31, d67).

- `corpus.py`: text the project already has (curriculum days, docs) and a WordPiece tokenizer trained on it.
- `hotloop/`: one post-processing hot loop (hashed n-gram counts over token ids) in pure Python, Numba, Cython and
  C++ (pybind11); `build.py` compiles the last two into `.lab/build/backends/`.
- `repository.py`: a Triton model repository of Python-backend tokenizer models, configs as `ModelConfig` protobuf.
- `headers.py`: looks for the Triton backend API headers a C++ custom backend would need (d31).
"""
