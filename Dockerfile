# syntax=docker/dockerfile:1
# Policy gateway image: build stage installs the package into a virtualenv, the runtime
# stage copies only that virtualenv onto a slim Python and runs it as an unprivileged user.
# No secrets are baked in: tokens, kubeconfig and Palette keys arrive at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/gateway
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY gateway/__init__.py gateway/
RUN /opt/gateway/bin/pip install --no-compile . && /opt/gateway/bin/pip uninstall --yes policy-gateway
COPY gateway/ gateway/
RUN /opt/gateway/bin/pip install --no-compile --no-deps . \
 && /opt/gateway/bin/python -m compileall -q /opt/gateway/lib \
 && /opt/gateway/bin/gateway --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG GATEWAY_UID=10001
RUN groupadd --system --gid ${GATEWAY_UID} gateway \
 && useradd --system --uid ${GATEWAY_UID} --gid gateway --no-create-home \
      --home-dir /var/lib/policy-gateway --shell /usr/sbin/nologin gateway \
 && install -d -o gateway -g gateway -m 0700 /var/lib/policy-gateway \
 && install -d -o root -g root -m 0755 /etc/policy-gateway
COPY --from=build /opt/gateway /opt/gateway
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_TRANSPORT=http \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_DB_PATH=/var/lib/policy-gateway/gateway.db \
    GATEWAY_TOKENS_FILE=/var/lib/policy-gateway/tokens.jsonl
WORKDIR /var/lib/policy-gateway
USER ${GATEWAY_UID}:${GATEWAY_UID}
EXPOSE 8000
VOLUME ["/var/lib/policy-gateway"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["gateway"]
CMD ["serve", "--transport", "http"]
