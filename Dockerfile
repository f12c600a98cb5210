# parquet-ingestor in a container: `ingest` is the entrypoint, configuration comes from
# arguments or INGEST_* variables (INGEST_SOURCE=sqs, INGEST_SINK=s3, ...). See docs/deploy.md.
#
#   docker build -t parquet-ingestor .
#   docker run --rm parquet-ingestor --source sqs --source-opt queue_url=$QUEUE \
#       --sink s3 --sink-opt bucket=my-lake --sink-opt prefix=events/

# ---- build: wheels of the four workspace distributions ---------------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY core/ core/
COPY plugins/parquet/ plugins/parquet/
COPY plugins/s3/ plugins/s3/
COPY plugins/sqs/ plugins/sqs/
COPY LICENSE ./
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels \
        ./core ./plugins/parquet ./plugins/s3 ./plugins/sqs

# ---- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INGEST_LOG_FORMAT=json \
    INGEST_METRICS_PORT=9108
# The wheels are given as files, so the plugins' "parquet-ingestor>=0.1" resolves to the core wheel
# built above, never to another copy from the index; third-party dependencies come from PyPI.
# (From PyPI instead: pip install 'parquet-ingestor[all,metrics]'.)
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl 'prometheus-client>=0.20' \
        'opentelemetry-sdk>=1.25' 'opentelemetry-exporter-otlp-proto-http>=1.25' \
 && groupadd --gid 10001 ingest \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin ingest
COPY --from=build /src/LICENSE /usr/share/doc/parquet-ingestor/LICENSE
USER 10001:10001
WORKDIR /tmp
EXPOSE 9108
# /healthz answers 503 when messages are in flight but nothing was flushed for a long time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('INGEST_METRICS_PORT', '9108'), timeout=4)"]
# exec form: ingest is PID 1 and gets SIGTERM itself (first signal drains, a second aborts)
STOPSIGNAL SIGTERM
ENTRYPOINT ["ingest"]
CMD ["--help"]
