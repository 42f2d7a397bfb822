# d01.e1, the layered way: one RUN that updates, installs without recommends and cleans up in the same layer
# (files deleted in a later layer still ship in the earlier one), dependencies before source, source last.
ARG BASE_IMAGE=localhost/ailab-debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-numpy python3-yaml curl procps \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY app /app
CMD ["python3", "/app/main.py"]
