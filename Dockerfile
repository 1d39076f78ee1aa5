# syntax=docker/dockerfile:1
# One image for every streamer service (producer, processor, api, simulator, one-shot init jobs).
# The build stage makes the streamer wheel (with its package data: migrations, page, Kafka schemas)
# and the wheels of its dependencies at the tested versions of constraints.txt; the final stage
# installs that same wheel from them, without the `embedded` extra: the services talk to a
# ClickHouse server, so chdb, pandas and pyarrow stay out of the image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY streamer ./streamer
RUN pip wheel --no-cache-dir -c constraints.txt -w /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 streamer
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/src/constraints.txt,target=/constraints.txt \
    pip install --no-cache-dir --no-index --find-links /wheels -c /constraints.txt streamer
WORKDIR /app
ENV STREAMER_DATA_DIR=/data PYTHONUNBUFFERED=1
# /data is the processor's state (faust tables); compose mounts a named volume on it.
RUN mkdir -p /data && chown streamer /data
USER streamer
ENTRYPOINT []
CMD ["streamer", "--help"]
