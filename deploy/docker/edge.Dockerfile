# Edge node image. Build from the repository root:
#   docker build -f deploy/docker/edge.Dockerfile -t sentiedge-edge .
# Multi-stage: wheels are built in the first stage; the runtime has no compiler, runs as a
# non-root user and carries the release model bundle (about 28 MB) inside the package.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sentiedge_core sentiedge_core
COPY edge_node edge_node
COPY control_plane control_plane
COPY protos protos
COPY models models
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/sentiedge --create-home sentiedge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl && rm -rf /wheels
USER sentiedge
WORKDIR /var/lib/sentiedge
ENV EDGE_HOST=0.0.0.0 \
    EDGE_PORT=8080 \
    EDGE_ADMIN_HOST=0.0.0.0 \
    EDGE_ADMIN_PORT=9090 \
    EDGE_DATA_DIR=/var/lib/sentiedge/edge
EXPOSE 8080 9090
VOLUME ["/var/lib/sentiedge"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9090/readyz', timeout=2)" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["edge-node", "serve"]
