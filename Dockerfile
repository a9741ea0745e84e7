# Conveyor's container image: Node 24 (which runs the TypeScript sources as they are, by type
# stripping: there is no compile step), production dependencies only, a non-root user, and
# nothing written outside /data and /tmp, so it runs with a read-only root file system.
#
#   docker build -t conveyor:dev .                      # with a Docker engine
#   npm run cluster:image                               # without one (buildah), into the test cluster
#
# NODE_IMAGE picks the base: any Debian-based Node 24 image with npm, e.g. a mirror of it
# (--build-arg NODE_IMAGE=registry.example.com/library/node:24-bookworm-slim).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- dependencies: installed from the lock file, without dev dependencies or install scripts;
# source maps and type declarations (about 40 MB, nothing that runs) are dropped.
# Behind a TLS-intercepting proxy, hand npm the proxy's CA as a build secret (never stored in
# the image): --secret id=ca_certs,src=/etc/ssl/certs/ca-certificates.crt
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca_certs \
    if [ -s /run/secrets/ca_certs ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca_certs; fi \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && rm -rf /root/.npm /tmp/*

# --- the web page: built with esbuild (a dev dependency, so in a stage of its own) from
# src/ui into dist/ui; only the built files reach the image.
FROM ${NODE_IMAGE} AS ui
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca_certs \
    if [ -s /run/secrets/ca_certs ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca_certs; fi \
 && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
COPY scripts/build-ui.ts ./scripts/
COPY src/ui ./src/ui
RUN node scripts/build-ui.ts

# --- runtime: the base image, the dependencies and the sources, all owned by root and
# read-only to the server's user.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    CONVEYOR_HOST=0.0.0.0 \
    CONVEYOR_PORT=8080 \
    CONVEYOR_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY --from=ui /app/dist/ui ./dist/ui
# `conveyor` on PATH (bin/conveyor finds the app through the link and runs `node` from PATH),
# and the data directory (sqlite log archive) writable by the unprivileged user. Anything
# mounted over /data (a PersistentVolume, an emptyDir) replaces it.
RUN ln -s /app/bin/conveyor /usr/local/bin/conveyor \
 && mkdir -p /data \
 && chown 1000:1000 /data \
 && chmod 0750 /data \
 && node -e 'const [major] = process.versions.node.split("."); if (Number(major) < 24) { console.error(`Node ${process.versions.node}: Conveyor needs Node 24`); process.exit(1); }' \
 && conveyor --help >/dev/null
# uid 1000 (the base image's `node` user): numeric, so Kubernetes can check runAsNonRoot.
USER 1000:1000
ENV HOME=/tmp
VOLUME ["/data"]
EXPOSE 8080
CMD ["conveyor", "serve"]
