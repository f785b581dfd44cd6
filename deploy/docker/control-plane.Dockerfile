# Control plane image. Build from the repository root:
#   docker build -f deploy/docker/control-plane.Dockerfile -t sentiedge-control-plane .
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
ENV CP_HOST=0.0.0.0 \
    CP_PORT=50051 \
    CP_METRICS_PORT=9091 \
    CP_DATA_DIR=/var/lib/sentiedge/control-plane
EXPOSE 50051 9091
VOLUME ["/var/lib/sentiedge"]
# gRPC health checking is on; with mTLS the probe needs a client certificate, so the image
# checks the metrics listener instead (it answers as soon as the server is up).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9091/metrics', timeout=2)" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["control-plane", "serve"]
