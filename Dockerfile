# Static ztproxy binary in a minimal, non-root image. The production build
# leaves the demo (its OpenID provider and app) out: -tags ztproxy_nodemo.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -tags ztproxy_nodemo -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ztproxy ./cmd/ztproxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ztproxy /usr/local/bin/ztproxy
USER 65532:65532
EXPOSE 8443 9090
# The image has no shell or wget: the binary probes its own /readyz. Use the
# same exec form in Kubernetes (exec probe) or ECS (healthCheck.command).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/ztproxy", "healthcheck", "--config", "/etc/ztproxy/config.yaml", "--quiet"]
ENTRYPOINT ["/usr/local/bin/ztproxy"]
CMD ["serve", "--config", "/etc/ztproxy/config.yaml"]
