# The routelens container image.
#
#   docker build -t routelens .            (or: podman build --format docker -t routelens .)
#   docker run -p 4317:4317 -p 4318:4318 -p 8888:8888 routelens
#
# It runs `routelens run --config /etc/routelens/otel-config.yaml`: the repository's otel-config.yaml, listening on
# 0.0.0.0 (4317 OTLP/gRPC, 4318 OTLP/HTTP, 8888 query API + /metrics + /healthz). Mount a config at that path
# to replace it. The process runs as uid 10001 and writes nothing outside the volumes a config names (e.g. the
# file_storage directory), so a read-only root file system works.
#
# BASE: any image with Node.js 20 (node, and npm for the build stages) on Debian or Ubuntu.
# scripts/build-image.sh builds an equivalent one locally where no image registry can be reached.
ARG BASE=node:20-bookworm-slim

# Production dependencies only.
FROM ${BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# extra_ca_certs (optional): the CA of a TLS-intercepting proxy between the build and the npm registry.
RUN --mount=type=secret,id=extra_ca_certs \
    if [ -s /run/secrets/extra_ca_certs ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra_ca_certs; fi; \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund && rm -rf /root/.npm

# The compiled JavaScript (tests excluded).
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=extra_ca_certs \
    if [ -s /run/secrets/extra_ca_certs ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra_ca_certs; fi; \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The page's browser scripts have their own tsconfig (DOM types, classic scripts): see src/extensions/routequery/README.md.
RUN npx tsc -p tsconfig.build.json && npx tsc -p src/extensions/routequery/page

FROM ${BASE}
# scripts/build-image.sh adds org.opencontainers.image.version (`--label`).
LABEL org.opencontainers.image.title="routelens" \
      org.opencontainers.image.description="OpenTelemetry collector-side trace processor and per-route latency analyzer" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /opt/routelens
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY bin/routelens.js ./bin/routelens.js
COPY proto ./proto
COPY otel-config.yaml /etc/routelens/otel-config.yaml
# The default config reads its listen addresses from these; inside a container they must not be localhost.
ENV NODE_ENV=production \
    ROUTELENS_GRPC_ENDPOINT=0.0.0.0:4317 \
    ROUTELENS_HTTP_ENDPOINT=0.0.0.0:4318 \
    ROUTELENS_QUERY_ENDPOINT=0.0.0.0:8888
USER 10001:10001
EXPOSE 4317 4318 8888
# /healthz of the routequery extension: 200 while every pipeline runs (no credentials needed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["node", "-e", "const port = (process.env.ROUTELENS_QUERY_ENDPOINT || '').split(':').pop() || '8888'; require('http').get({ host: '127.0.0.1', port, path: '/healthz', timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
STOPSIGNAL SIGTERM
# The V8 flags of bin/routelens.js's first line (src/v8/flags.ts V8_FLAGS says why each is there). Node is
# PID 1 and handles SIGTERM itself: it stops accepting, drains the pipelines and exits.
ENTRYPOINT ["node", "--single-threaded-gc", "--initial-heap-size=8", "--max-semi-space-size=1", "--v8-pool-size=1", "--no-memory-reducer", "/opt/routelens/bin/routelens.js"]
CMD ["run", "--config", "/etc/routelens/otel-config.yaml"]
