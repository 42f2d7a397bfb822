# d01.e1, the naive way: source copied first (any edit invalidates every layer below), one `RUN apt` per package,
# recommended packages pulled in, apt lists and downloaded .debs left in the layers.
ARG BASE_IMAGE=localhost/ailab-debian:bookworm
FROM ${BASE_IMAGE}
COPY app /app
RUN apt-get update
RUN apt-get install -y python3-numpy
RUN apt-get install -y python3-yaml
RUN apt-get install -y curl
RUN apt-get install -y procps
CMD ["python3", "/app/main.py"]
