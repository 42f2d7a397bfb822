"""Day 3: the MLP, its ONNX exports, ONNX Runtime inference and the d03 experiments."""
