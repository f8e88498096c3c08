# syntax=docker/dockerfile:1
#
# One image for every Piazza process; the process is the command:
#   docker run piazza migrate
#   docker run piazza serve ingress --host 0.0.0.0 --port 8000
#   docker run piazza serve inbox-api --host 0.0.0.0 --port 8000
#   docker run piazza worker inbox --host 0.0.0.0 --port 9100
# docker-compose.yml and deploy/k8s/ run it that way.

ARG PYTHON_VERSION=3.11

# --- build: resolve the dependencies and build Piazza into a virtualenv ------------------------------
FROM python:${PYTHON_VERSION}-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, in a layer of their own, so editing the code does not reinstall them.
# The list is read from pyproject.toml (runtime dependencies only, never the dev extra).
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

# Then Piazza itself, built as a wheel (not editable) into the same virtualenv. Migrations and Alembic
# templates travel inside the packages (pyproject's package-data).
COPY README.md ./
COPY shared ./shared
COPY services ./services
COPY piazza ./piazza
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/piazza --help > /dev/null

# --- runtime: the virtualenv on a clean slim image, run by an unprivileged user ---------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

LABEL org.opencontainers.image.title="piazza" \
      org.opencontainers.image.description="Piazza, the open-source social inbox: every service in one image." \
      org.opencontainers.image.licenses="Apache-2.0"

# A numeric user, so Kubernetes' runAsNonRoot can verify it without looking inside the image.
RUN groupadd --system --gid 10001 piazza \
    && useradd --system --uid 10001 --gid piazza --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin piazza

COPY --from=build /opt/venv /opt/venv

# PIAZZA_ENV=production by default: development conveniences (bootstrap token, generated secret key,
# SQLite fallback) are refused unless someone asks for them on purpose. Nothing writes bytecode at run
# time, so the root filesystem can be mounted read-only.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIAZZA_ENV=production \
    PIAZZA_LOG_FORMAT=json

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# Liveness of the default command; slim has no curl, so Python asks. A worker (port 9100) or a server
# on another port sets PIAZZA_PORT or overrides the check, as docker-compose.yml does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PIAZZA_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["piazza"]
CMD ["serve", "inbox-api", "--host", "0.0.0.0", "--port", "8000"]
