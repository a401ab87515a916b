# Convenience targets. The test suite itself is `bash .ci/run` (go test ./...).

.PHONY: bench bench-short

# Full end-to-end load benchmark (3 rounds x 10 s per candidate); results in
# bench/results/<timestamp>/. See docs/performance.md.
bench:
	go run ./bench $(BENCHFLAGS)

# CI smoke mode: 2 s per candidate, one round.
bench-short:
	go run ./bench -short $(BENCHFLAGS)
