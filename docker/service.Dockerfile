# One image definition for ingest, dispatcher, store and api: slim, non-root, with a health check.
# Build: docker build -f docker/service.Dockerfile -t wcml-service .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install . && useradd --system --uid 10001 wcml
USER wcml
# Overridden per service in compose.yaml; HTTP services answer /healthz, consumers prove liveness by
# reaching the broker and database through `wcml healthcheck`.
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["wcml", "healthcheck"]
ENTRYPOINT ["wcml"]
