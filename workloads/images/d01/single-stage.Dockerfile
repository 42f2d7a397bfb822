# d01.e2, single stage: the compiler, headers and pip's build leftovers stay in the image that ships.
ARG BASE_IMAGE=localhost/ailab-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
RUN --mount=type=bind,source=wheels,target=/wheels \
    /opt/venv/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt
COPY app /app
RUN gcc -O2 -o /usr/local/bin/fastsum /app/fastsum.c
ENV PATH=/opt/venv/bin:$PATH
CMD ["python3", "/app/main.py"]
