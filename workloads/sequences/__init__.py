"""Sequence batching on the local tritonserver: a small GRU exported to ONNX, served statefully behind Triton's
sequence batcher (correlation ids, START/END/READY/CORRID controls), and the same network served stateless behind
the dynamic batcher for comparison."""
