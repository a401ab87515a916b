# Static ztproxy binary in a minimal, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ztproxy ./cmd/ztproxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ztproxy /usr/local/bin/ztproxy
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/ztproxy"]
CMD ["serve", "--config", "/etc/ztproxy/config.yaml"]
