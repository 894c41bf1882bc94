# syntax=docker/dockerfile:1
#
# ccswitch image: compile TypeScript in a build stage, run the compiled JS on a slim runtime.
#   docker build -t ccswitch .
#   docker run -p 8080:8080 -e REDIS_URL=redis://redis:6379 -e API_TOKENS=<16+ chars> ccswitch
# Config: /app/config/default.yaml (override with CCSWITCH_CONFIG, e.g. a mounted file) plus
# the env overrides REDIS_URL, DRACHTIO_*, FREESWITCH_*, HTTP_PORT, LOG_LEVEL, API_TOKENS.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies (dev included) + tsc + the browser UI (vite → dist/ui) ----------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first so this layer is cached until package*.json change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Sources (node_modules, dist, tests output etc. are kept out by .dockerignore). One COPY of the
# context rather than per-folder COPYs, so a folder that is still empty cannot break the build.
COPY . .
RUN npm run build

# ---- runtime: production dependencies + dist/ (the compiled app and dist/ui) + config/ -------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HTTP_PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force
# dist/ui holds the browser UI served at /ui/ (static files only: no configuration in them).
COPY --from=build /app/dist ./dist
COPY config ./config
# Files stay root-owned (read-only for the app); run as the image's unprivileged "node" user.
USER node
EXPOSE 8080
# No curl in slim images: probe /healthz with node itself (200 = healthy, anything else = not).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "-e", "const p=process.env.HTTP_PORT||8080;require('http').get({host:'127.0.0.1',port:p,path:'/healthz',timeout:4000},r=>{r.resume();process.exit(r.statusCode===200?0:1)}).on('timeout',function(){this.destroy();process.exit(1)}).on('error',()=>process.exit(1))"]
CMD ["node", "dist/app/main.js"]
