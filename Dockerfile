# syntax=docker/dockerfile:1
# One image for every process of Workflows; the command picks which one runs:
#   python -m services.api | services.dispatcher | services.executor | services.health
#   wf migrate                      (apply database migrations; run before new service versions)
# The same command lines are used by docker-compose.yml and deploy/k8s (tests/deploy checks this).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: compilers live here only, in case a dependency has no wheel for the platform ----
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, as their own layer: source edits do not reinstall them. Exactly the versions
# and files of requirements.lock (pip-compile --generate-hashes from pyproject's runtime
# dependencies; `make lock` regenerates it): every download is hash-checked, nothing floats.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml ./

COPY shared/ shared/
COPY services/ services/
COPY wf/ wf/
COPY migrations/ migrations/
# A regular (non-editable) install. shared/db/migrate.py looks for migrations/ next to the top-level
# packages, so it is placed beside them in site-packages.
RUN pip install --no-deps . \
 && cp -r migrations "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/migrations" \
 && python -c "from shared.db.migrate import MIGRATIONS; assert (MIGRATIONS / 'env.py').is_file(), MIGRATIONS"

# ---- runtime: the virtualenv only; no compilers, no source tree, no pip cache ----
FROM ${PYTHON_IMAGE} AS runtime
# OCI image annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md);
# CI passes the version, commit and build time as build arguments.
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="workflows" \
      org.opencontainers.image.description="Event-driven automation for emergency-services departments" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/example/workflows" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
RUN groupadd --system --gid 10001 workflows \
 && useradd --system --uid 10001 --gid workflows --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin workflows \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/workflows
COPY --from=build /opt/venv /opt/venv
# WF_RUN_DIR: where development mode keeps generated keys (docker compose mounts a volume there).
# In production (WF_ENV=production) nothing is written, so the root filesystem can be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WF_RUN_DIR=/var/lib/workflows \
    WF_API_HOST=0.0.0.0 \
    WF_METRICS_HOST=0.0.0.0
WORKDIR /var/lib/workflows
# Numeric so that Kubernetes can verify runAsNonRoot without resolving the name.
USER 10001:10001
EXPOSE 8080 8081 8082 8083 8084
# Python is PID 1 and handles SIGTERM itself (graceful drain); no shell wrapper that would swallow it.
CMD ["python", "-m", "services.api"]
