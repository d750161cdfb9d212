# The Masques Ledger daemon (`masques-ledger serve`). Used by docker-compose.yml.
#
# Two images from one file:
#   docker build --target daemon .          the default: with the embedded analytics engine (chDB)
#   docker build --target daemon-server .   without chDB, for a ClickHouse server (CLICKHOUSE_URL);
#                                           about 550 MB smaller. docker-compose.yml builds this one.
# Docker cannot run on the machines this project is developed on: tests/ops/compose.test.ts checks
# this file's structure instead (stages, the chDB removal, the user, the entrypoint).
FROM node:20.18.1-bookworm-slim AS base
WORKDIR /app
# NODE_OPTIONS: a 64 MiB V8 semi-space (ADR 0129: fewer scavenges per call); `docker run -e
# NODE_OPTIONS=...` replaces it.
ENV NODE_ENV=production \
    MASQUES_DATA_DIR=/data \
    NODE_OPTIONS=--max-semi-space-size=64

# Dependencies exactly as locked. Native packages (tigerbeetle-node, chdb) ship prebuilt glibc
# binaries, hence a Debian (glibc) base image rather than Alpine. clients/ is an npm workspace (the
# client package); the daemon runs its TypeScript through tsx, so the client CLI's build (the root
# `prepare` script) is not needed here: --ignore-scripts.
FROM base AS deps
COPY package.json package-lock.json ./
COPY clients/package.json ./clients/package.json
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The same tree without chdb and its per-platform engine (@chdb/lib-*). `npm ci --omit=optional`
# would not do it: chdb is a regular dependency (only its engine packages are optional), and it
# would also drop other packages' optional platform binaries (esbuild's, which tsx needs).
# `npm uninstall --no-save` prunes chdb and everything only it needs, leaving package.json and
# the lock file untouched; the check fails the build if any of it is left.
FROM deps AS deps-server
RUN npm uninstall --no-save --omit=dev --no-audit --no-fund chdb \
 && test ! -e node_modules/chdb \
 && test -z "$(ls -A node_modules/@chdb 2>/dev/null)"

FROM base AS runtime
COPY bin ./bin
COPY src ./src
COPY clients ./clients
COPY proto ./proto
COPY sql ./sql
COPY masques ./masques
COPY package.json tsconfig.json ./
# The data directory belongs to the unprivileged user (a named volume mounted here inherits it).
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
EXPOSE 50051 8080
# Liveness for `docker run` users; compose defines the same check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/masques-ledger.js"]
CMD ["serve"]

# For a ClickHouse server: no embedded analytics engine in the image.
FROM runtime AS daemon-server
COPY --from=deps-server /app/node_modules ./node_modules
USER node

# Default (last stage): with embedded chDB.
FROM runtime AS daemon
COPY --from=deps /app/node_modules ./node_modules
USER node
