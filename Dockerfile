# One image for both roles:  docker run IMAGE router  |  docker run IMAGE shard
# Holds no secret: LOOT_CLUSTER_SECRET comes from the environment at run time.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY loot loot
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin loot \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
# In a container every role listens on 7070 (gRPC) and 9100 (metrics) on all interfaces,
# so the health probe below and the orchestrators' probes need no per-role setting.
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    LOOT_HOST=0.0.0.0 LOOT_PORT=7070 LOOT_METRICS_PORT=9100 LOOT_DATA=/data LOOT_LOG_FORMAT=json
USER 10001:10001
VOLUME ["/data"]
EXPOSE 7070 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["loot", "health"]
ENTRYPOINT ["loot"]
CMD ["router"]
