# The Masques Ledger daemon (`masques-ledger serve`). TypeScript runs directly through tsx (a
# runtime dependency), so there is no build step. Used by docker-compose.yml.
FROM node:20.18.1-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    MASQUES_DATA_DIR=/data

# Dependencies first (layer cache). Native packages (tigerbeetle-node, chdb) ship prebuilt
# glibc binaries, hence a Debian (glibc) base image rather than Alpine.
# clients/ is an npm workspace (the client package); the daemon runs its TypeScript through tsx,
# so the client CLI's build (the root `prepare` script) is not needed here: --ignore-scripts.
COPY package.json package-lock.json ./
COPY clients/package.json ./clients/package.json
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

COPY bin ./bin
COPY src ./src
COPY clients ./clients
COPY proto ./proto
COPY sql ./sql
COPY masques ./masques
COPY tsconfig.json ./

# The data directory belongs to the unprivileged user (a named volume mounted here inherits it).
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 50051 8080

# Liveness for `docker run` users; compose defines the same check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["node", "bin/masques-ledger.js"]
CMD ["serve"]
