# syntax=docker/dockerfile:1
# Two stages: the first installs the reconciler and its dependencies into a virtual environment,
# the second copies only that environment, so pip, setuptools and build files stay out of the image.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies and the build backend first, in a layer of their own: a change of the code
# alone then fetches nothing.
COPY pyproject.toml /src/
RUN python3 -m venv /opt/reconciler \
 && python3 -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb')); \
print(*p['project']['dependencies'], *p['build-system']['requires'], sep='\n')" > /src/requirements.txt \
 && /opt/reconciler/bin/pip install --requirement /src/requirements.txt
COPY README.md /src/
COPY reconciler /src/reconciler
RUN /opt/reconciler/bin/pip install --no-deps --no-build-isolation /src \
 && /opt/reconciler/bin/pip check \
 && /opt/reconciler/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim
# tini as PID 1: signals reach the reconciler, and orphaned job processes are reaped. A base that
# already has it (CI builds one without a registry) skips the download.
RUN if ! command -v tini >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --system --gid 10001 reconciler \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/reconciler \
      --shell /usr/sbin/nologin reconciler \
 && mkdir -p /data /schedules && chown 10001:10001 /data
COPY --from=build /opt/reconciler /opt/reconciler

USER 10001:10001
WORKDIR /home/reconciler
# Up to 64 job threads: glibc would give each its own malloc arena. With two, a soak of 100
# one-second schedules stayed smaller at the same number of runs.
ENV PATH=/opt/reconciler/bin:$PATH \
    MALLOC_ARENA_MAX=2
# A named volume starts as this directory: owned by 10001. A bind-mounted directory must be too.
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["tini", "--", "reconciler"]
# Listening on all interfaces is explicit here: probes and the dashboard reach the pod's IP.
CMD ["run", "--dir", "/schedules", "--ledger", "/data/ledger.db", "--listen", "0.0.0.0:8080", "--log-format", "json"]

# Last, so that a new revision rebuilds no layer. Release builds pass all three.
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=https://github.com/OWNER/schedule-reconciler
LABEL org.opencontainers.image.title="schedule-reconciler" \
      org.opencontainers.image.description="Declarative, GitOps-style job scheduler: schedules as YAML in git, reconciled into a live scheduler." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
