# Convenience targets. The test suite itself is `bash .ci/run` (go test ./...).

.PHONY: bench bench-short release

# Full end-to-end load benchmark (3 rounds x 10 s per candidate); results in
# bench/results/<timestamp>/. See docs/performance.md.
bench:
	go run ./bench $(BENCHFLAGS)

# CI smoke mode: 2 s per candidate, one round.
bench-short:
	go run ./bench -short $(BENCHFLAGS)

# The production binary: no demo (its OpenID provider and app are not linked;
# `ztproxy demo` says so). The Dockerfile builds the same way.
VERSION ?= dev
release:
	CGO_ENABLED=0 go build -tags ztproxy_nodemo -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o ztproxy ./cmd/ztproxy
