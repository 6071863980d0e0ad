# QuackML server image; docker-compose.yml runs it with a Ray cluster, README
# "Deployment" says how. This machine has no Docker engine: tests/test_container.py
# lints this file with hadolint and runs its ENTRYPOINT, CMD and ENV natively,
# reached from another network namespace.
FROM python:3.11-slim-bookworm

# libgomp1: LightGBM's OpenMP runtime. gcc and libc6-dev: the C compiler (`cc`)
# pylignum drives to compile LightGBM/XGBoost trees for the prediction functions
# (inference/compiled.py). postgresql-client: pg_isready for the HEALTHCHECK
# below, and psql for operators.
# DL3008 (pin apt versions) ignored: the Debian release is pinned by the base
# image tag (bookworm); exact package versions leave the mirror at each point
# release, which would break the build instead of bringing security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 gcc libc6-dev postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user owning /data (uid 10001: no clash with a host user by default)
RUN useradd --create-home --uid 10001 --user-group quackml \
    && mkdir /data \
    && chown quackml:quackml /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY quackml ./quackml
COPY server ./server
COPY catalog ./catalog
COPY automl ./automl
COPY inference ./inference
COPY examples ./examples
# The extra `ray` brings Ray: the same image runs the ray-head and ray-worker services.
# DL3013 (pin pip versions) ignored: this installs the checkout itself; the ranges
# of its dependencies are pyproject.toml's, as for every other install.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[ray]"
COPY docker/entrypoint.sh /usr/local/bin/quackml-entrypoint

# Listens on all interfaces with SCRAM-SHA-256. The superuser's password comes from
# QUACKML_SUPERUSER_PASSWORD: the first start refuses to run without one
# (docker-compose.yml refuses to start without it). TLS is offered once
# QUACKML_TLS_CERT and QUACKML_TLS_KEY name a mounted certificate and key
# (docker-compose.tls.yml), and required of remote clients only with
# QUACKML_TLS_REQUIRED_REMOTE=true.
ENV PYTHONUNBUFFERED=1 \
    QUACKML_HOST=0.0.0.0 \
    QUACKML_PORT=5433 \
    QUACKML_DATABASE=/data/quackml.duckdb \
    QUACKML_DATA_DIR=/data \
    QUACKML_AUTH=scram-sha-256 \
    QUACKML_SUPERUSER=quackml \
    QUACKML_TLS_REQUIRED_REMOTE=false

# numeric, so a runtime can check it is not root (Kubernetes' runAsNonRoot)
USER 10001:10001
# Database and model artifacts; declared after the chown so a new volume is quackml's
VOLUME /data
# the wire protocol and the web console (docs/console.md)
EXPOSE 5433 5434
# pg_isready reports a server that answers a start-up packet (it needs no password)
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["sh", "-c", "pg_isready --quiet --host=127.0.0.1 --port=\"$QUACKML_PORT\" --dbname=quackml --username=\"$QUACKML_SUPERUSER\" || exit 1"]
ENTRYPOINT ["quackml-entrypoint"]
CMD ["quackml", "serve"]
