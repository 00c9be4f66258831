# syntax=docker/dockerfile:1
# strangler-proxy: build with tsc, run on Node LTS (slim) as a non-root user.
#   docker build -t strangler-proxy .
#   docker run -v "$PWD/deploy:/etc/strangler:ro" -p 8080:8080 -p 9090:9090 strangler-proxy
# test/e2e/docker.test.ts replays this file outside Docker: it copies what the
# COPY lines copy, runs what the RUN lines run, and starts the CMD.

ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY config ./config
# The embedded config, so the image runs alone; mount a directory over /etc/strangler
# (never a single file: the proxy watches the directory to hot-reload).
COPY config/routes.yaml /etc/strangler/routes.yaml
# Runtime overrides (rollback, weight) are saved here: point server.stateFile at it.
RUN mkdir -p /var/lib/strangler && chown 1000:1000 /var/lib/strangler
# The node user of the official image, by number so that runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9090
CMD ["node", "dist/cli.js", "serve", "--config", "/etc/strangler/routes.yaml"]
