# The manager image: a static binary on distroless, running as a non-root user.
#   make docker-build docker-push IMG=<registry>/xdrive-controller:<tag>
# `make image` builds the same image without Docker (see hack/image).
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown

WORKDIR /workspace
# Cache the modules before copying the sources, so that a source change does
# not download them again.
COPY go.mod go.sum ./
RUN go mod download

COPY cmd/ cmd/
COPY api/ api/
COPY internal/ internal/

# CGO_ENABLED=0: a static binary that needs nothing from the base image.
# GOARCH has no default, so that the binary matches the platform the image is
# built for (docker buildx --platform sets TARGETARCH).
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
    -o manager ./cmd

# distroless/static:nonroot holds CA certificates, /etc/passwd and tzdata, and no shell.
FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="xdrive-controller" \
      org.opencontainers.image.source="https://github.com/xdrive-io/xdrive" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
