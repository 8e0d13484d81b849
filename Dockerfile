# syntax=docker/dockerfile:1
# Flywheel's image: `flywheel serve` by default; the same image runs `flywheel worker` and `flywheel db upgrade`
# (compose.yaml, deploy/README.md). Build: docker build -t flywheel .

# The builder turns the project and every dependency into wheels; nothing of it but the wheels goes further.
FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY jobs ./jobs
COPY store ./store
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[sentry]'

# The final image: the wheels installed from the builder without an index, no compiler, a user without root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLYWHEEL_LOG_FORMAT=json \
    FLYWHEEL_ARTIFACTS=/srv/flywheel/artifacts \
    FLYWHEEL_OUTBOX=/srv/flywheel/outbox
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels 'flywheel[sentry]'
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin flywheel \
    && mkdir -p /srv/flywheel/artifacts /srv/flywheel/outbox \
    && chown -R flywheel:flywheel /srv/flywheel
WORKDIR /srv/flywheel
USER flywheel
EXPOSE 3000
# Liveness only: /healthz answers without the database. Readiness (/readyz) is the orchestrator's check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]
CMD ["flywheel", "serve", "--host", "0.0.0.0", "--port", "3000"]
