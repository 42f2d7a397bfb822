# d01.e3, pip from the package index inside the build: what most Dockerfiles do. Needs the build container to
# reach PyPI over HTTPS (it cannot here: see docs/images.md); pins as pip-wheelhouse.Dockerfile.
ARG BASE_IMAGE=localhost/ailab-debian:bookworm
FROM ${BASE_IMAGE}
COPY wheels/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install -q --no-cache-dir --timeout 20 --retries 1 -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall -q -y pip setuptools
ENV PATH=/opt/venv/bin:$PATH
CMD ["python3", "-c", "import numpy, onnx"]
