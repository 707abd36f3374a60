# The predictor image bundles its model, as the original did:
#   docker build -f docker/predictor.Dockerfile --build-arg TASK=needsdiagnosis \
#     --build-arg MODEL_PATH=var/models/needsdiagnosis/<version> --build-arg MODEL_VERSION=<version> \
#     -t wcml-predictor:needsdiagnosis .
FROM python:3.11-slim
ARG TASK
ARG MODEL_PATH
ARG MODEL_VERSION
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WCML_MODELS_DIR=/models WCML_TASK=${TASK}
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install . && useradd --system --uid 10001 wcml
COPY ${MODEL_PATH} /models/${TASK}/${MODEL_VERSION}/
USER wcml
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["wcml", "healthcheck"]
ENTRYPOINT ["sh", "-c", "exec wcml predictor --task \"$WCML_TASK\" \"$@\"", "--"]
