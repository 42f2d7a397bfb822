# d01.e3, apt: the stack (numpy + ONNX) from Debian's packages (bookworm: numpy 1.24, onnx 1.12).
ARG BASE_IMAGE=localhost/ailab-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-numpy python3-onnx \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3", "-c", "import numpy, onnx"]
