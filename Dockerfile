# One image for every streamer service (producer, processor, api, simulator, one-shot init jobs).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamer ./streamer
COPY schemas ./schemas
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 streamer
COPY --from=build /install /usr/local
COPY schemas /app/schemas
WORKDIR /app
ENV STREAMER_DATA_DIR=/data PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown streamer /data
USER streamer
VOLUME ["/data"]
ENTRYPOINT []
CMD ["streamer", "--help"]
