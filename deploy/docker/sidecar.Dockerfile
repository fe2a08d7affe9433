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
COPY scripts/bundle-sidecar.ts ./scripts/
# One self-contained ESM file; prom-client, undici, yaml and the Kubernetes client are bundled in, and so is
# the status page's chart code (uPlot, built for the browser by esbuild in the same script). The script also
# aliases punycode to the userland package (Node 22+ warns, DEP0040, when bundled code loads the built-in).
RUN node --import tsx scripts/bundle-sidecar.ts --outfile=dist/sidecar.mjs

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
