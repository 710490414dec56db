# connectd — the two entry points: `make run` (agent in -dev with demo services) and `make test`.
SWIFT ?= swift
BIN = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)/connectd

.PHONY: setup build run test test-swift test-python clean-dev

setup:
	@scripts/setup

# One build for running and testing (--build-tests), so switching between them rebuilds nothing.
build: setup
	$(SWIFT) build --build-tests

## Run the agent in -dev mode with the demo services in contrib/dev (HTTP on 127.0.0.1:8500).
run: build
	$(BIN) agent -dev -config-dir contrib/dev

## Build and run every test: Swift unit, HTTP and end-to-end tests, then the Python client tests.
# --no-parallel: the end-to-end tests block while they drive real processes, and in parallel they
# would starve the 2-thread cooperative pool that the timing-sensitive watch tests run on.
test: build
	$(SWIFT) test --skip-build --no-parallel
	CONNECTD_BIN=$(BIN) scripts/python-client-tests
