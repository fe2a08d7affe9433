# syntax=docker/dockerfile:1
# epp-sidecar image: the control plane that watches InferencePools/Pods, scrapes model servers and pushes
# snapshots to every Envoy. Build from the repository root:
#   docker build -f deploy/docker/sidecar.Dockerfile -t epp-sidecar:dev .

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency may run code at install time.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY sidecar ./sidecar
# One self-contained ESM file; prom-client, undici, yaml and the Kubernetes client are bundled in. The Kubernetes
# client's node-fetch → whatwg-url → tr46 calls require("punycode"), which esbuild leaves to Node's built-in; Node 22+
# warns (DEP0040) when code outside node_modules loads it, so the alias bundles the userland punycode package instead.
RUN npx esbuild sidecar/main.ts --bundle --platform=node --target=node20 --format=esm --alias:punycode=punycode/ \
      --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" \
      --outfile=dist/sidecar.mjs

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/dist/sidecar.mjs /app/dist/sidecar.mjs
# The shipped scheduling configs --profile NAME reads (dist/../config/scheduling/NAME.yaml).
COPY config/scheduling /app/config/scheduling
# The node image ships an unprivileged "node" user (uid 1000); Kubernetes manifests pin runAsUser 1000.
USER 1000:1000
EXPOSE 9090
# A fixed 16 MB young generation keeps scavenges short whatever the memory limit (as bin/epp-sidecar.mjs).
ENTRYPOINT ["node", "--max-semi-space-size=16", "/app/dist/sidecar.mjs"]
