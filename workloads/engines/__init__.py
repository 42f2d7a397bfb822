"""Inference engines: the TensorRT path (for hosts that have it) and what stands in for it on the lent GPU.

- `profiles`, `calibration`, `trt`: TensorRT build configuration, optimisation profiles, INT8 calibrators,
  `trtexec`/Polygraphy command lines; `tensorrt` is imported lazily.
- `data`, `models`: the digits classifier trained here (accuracy) and the ResNet-50-shaped model (speed).
- `precision`, `ort_int8`, `compile_modes`, `shapes`, `aot`, `custom_ops`, `bert`: the substitute measurements
  (PyTorch Inductor/AOTInductor, Triton-lang, `torch._scaled_mm` FP8, ONNX Runtime CPU).
"""
