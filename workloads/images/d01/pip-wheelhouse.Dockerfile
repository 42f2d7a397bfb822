# d01.e3, pip from a wheelhouse: the same stack from wheels downloaded on the host (pip download) into the
# context and bind-mounted into the build; no index is contacted (numpy 1.26.4, onnx 1.22.0 as on the host).
ARG BASE_IMAGE=localhost/ailab-debian:bookworm
FROM ${BASE_IMAGE}
RUN --mount=type=bind,source=wheels,target=/wheels \
    python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt \
 && /opt/venv/bin/pip uninstall -q -y pip setuptools
ENV PATH=/opt/venv/bin:$PATH
CMD ["python3", "-c", "import numpy, onnx"]
