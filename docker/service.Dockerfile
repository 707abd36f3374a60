# One image definition for ingest, dispatcher, store and api: slim, non-root, with a health check.
# Build: docker build -f docker/service.Dockerfile -t wcml-service .
# Dependencies come from requirements/service.lock (core + the distributed extra: pika, psycopg2,
# boto3, gunicorn; no torch), every one pinned with its hashes; scripts/lock regenerates it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements/service.lock ./requirements/
RUN pip install --no-deps --require-hashes -r requirements/service.lock
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# --no-deps: the lock holds every dependency; pip check fails the build if the lock and pyproject disagree
RUN pip install --no-deps . && pip check && useradd --system --uid 10001 wcml
USER 10001
# Overridden per service in compose.yaml: each asks its own /healthz (an HTTP service's port, a
# consumer's metrics port). Without a URL, `wcml healthcheck` checks the broker and database answer.
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["wcml", "healthcheck"]
ENTRYPOINT ["wcml"]
