# Lanyard container image.
#
#   docker build -t lanyard --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg BUILD_TIME=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#   docker run -p 8080:8080 -v lanyard-data:/data lanyard                      # embedded SQLite
#   docker run -p 8080:8080 -e LANYARD_DATABASE_URL=… -e LANYARD_SECRET=… lanyard # PostgreSQL
#
# See docs/operations.md and docs/settings.md for the settings a deployment needs.

# ---- build ----------------------------------------------------------------
# The exact Go patch release, the same as go.mod's toolchain line: a rebuild
# never silently changes the standard library (net/http, crypto) it ships.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src

# Modules first, in their own layer: it is rebuilt only when go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=dev
# .git stays out of the build context (.dockerignore), so Go records no VCS
# revision: `lanyard version` reports these instead.
ARG REVISION=""
ARG BUILD_TIME=""
# Pure Go (the embedded SQLite driver needs no cgo), so the binary is static
# and runs on distroless/static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION} -X main.buildTime=${BUILD_TIME}" -o /out/lanyard ./cmd/lanyard

# The data directory for the embedded default, owned by distroless's nonroot
# user (65532) so the process can write its database and generated secret.
RUN mkdir -p /out/data && chown 65532:65532 /out/data && chmod 0700 /out/data

# ---- runtime --------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/lanyard /lanyard

# nonroot, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 65532:65532
WORKDIR /data

# The admin listener (/metrics) binds every interface of the container so a
# scraper on the container network reaches it; publish port 9090 only to that
# network, never to the internet.
ENV LANYARD_ADDR=0.0.0.0:8080 \
    LANYARD_ADMIN_ADDR=0.0.0.0:9090 \
    LANYARD_DATA_DIR=/data

# Declared after /data is populated, so a new named volume inherits its owner.
VOLUME /data
EXPOSE 8080 9090

# Distroless has no shell or curl: the binary asks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/lanyard", "healthcheck"]

ENTRYPOINT ["/lanyard"]
CMD ["serve"]
