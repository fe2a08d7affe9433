# syntax=docker/dockerfile:1
# vLLM simulator image for envoy/docker-compose.yaml (no GPU, no model weights). Build from the repository root:
#   docker build -f deploy/docker/sim.Dockerfile -t epp-sim:dev .
#   docker run -p 8000:8000 epp-sim:dev --pods 1 --base-port 8000 --host 0.0.0.0

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY sim ./sim
RUN npx esbuild sim/main.ts --bundle --platform=node --target=node20 --format=esm --outfile=dist/sim.mjs

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/dist/sim.mjs /app/dist/sim.mjs
USER 1000:1000
EXPOSE 8000
ENTRYPOINT ["node", "/app/dist/sim.mjs"]
CMD ["--pods", "1", "--base-port", "8000", "--host", "0.0.0.0"]
