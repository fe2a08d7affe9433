# syntax=docker/dockerfile:1
# The endpoint-picker filter as a Wasm OCI image: a single layer holding /plugin.wasm, the layout Envoy Gateway
# (EnvoyExtensionPolicy code.type: Image) and Istio (the EnvoyFilter in deploy/istio, oci://...) load.
#   docker build -f deploy/docker/wasm.Dockerfile -t REGISTRY/epp-wasm-filter:TAG .
#
# A second target, "installer", carries the same file plus busybox so a Kubernetes init container can copy it
# into an emptyDir for a standalone Envoy (a scratch image has no cp):
#   docker build -f deploy/docker/wasm.Dockerfile --target installer -t REGISTRY/epp-wasm-filter:TAG-installer .

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY asconfig.json ./
COPY assembly ./assembly
RUN npx asc assembly/index.ts --target release

FROM busybox:1.37 AS installer
COPY --from=build /src/build/filter.wasm /plugin.wasm
USER 65534:65534
# Usage: cp-plugin DEST (e.g. /wasm/filter.wasm on an emptyDir).
ENTRYPOINT ["/bin/cp", "/plugin.wasm"]
CMD ["/wasm/filter.wasm"]

# Last stage = default target. Exactly one COPY so the image has exactly one layer.
FROM scratch AS plugin
COPY --from=build /src/build/filter.wasm /plugin.wasm
