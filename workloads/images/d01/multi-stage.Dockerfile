# d01.e2, multi-stage: the same build in `builder`; `runtime` starts again from the base and copies only the venv,
# the compiled binary and the source. The builder's first steps are identical to single-stage.Dockerfile.
ARG BASE_IMAGE=localhost/ailab-debian:bookworm
FROM ${BASE_IMAGE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
RUN --mount=type=bind,source=wheels,target=/wheels \
    /opt/venv/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt
COPY app /app
RUN gcc -O2 -o /usr/local/bin/fastsum /app/fastsum.c \
 && /opt/venv/bin/pip uninstall -q -y pip setuptools

FROM ${BASE_IMAGE} AS runtime
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /usr/local/bin/fastsum /usr/local/bin/fastsum
COPY app /app
ENV PATH=/opt/venv/bin:$PATH
CMD ["python3", "/app/main.py"]
