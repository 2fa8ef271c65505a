# Targets: deps build test bench fuzz up down. `make test` is what CI runs
# (.ci/run): it installs what is missing first, then fails on unformatted
# files, vet findings, or any failing test.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
BIN ?= bin
TEST_TIMEOUT ?= 20m
FUZZTIME ?= 30s
# FUZZ_PKGS: where `make fuzz` looks for Fuzz* targets.
FUZZ_PKGS ?= ./...

.PHONY: deps build test fmt-check vet bench fuzz up down run chaos

deps:
	bash deploy/local/deps.sh

build:
	$(GO) build ./...
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./services/...

fmt-check:
	@unformatted=$$(git ls-files -z --cached --others --exclude-standard -- '*.go' | xargs -0 -r gofmt -l); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; \
	fi

vet:
	$(GO) vet ./...

test: deps fmt-check vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	bash deploy/bench/e2e.sh

# Runs every Fuzz* target for FUZZTIME, one after the other (go test -fuzz
# takes one target at a time). New failing inputs land in the package's
# testdata/fuzz and fail plain `go test` until fixed.
fuzz:
	for pkg in $$($(GO) list $(FUZZ_PKGS)); do \
		for target in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "fuzz: $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

up: build
	bash deploy/local/up.sh

down:
	bash deploy/local/down.sh

# The README's main command: the stack on embedded defaults, a simulated day
# in each pricing era, and the spend summary from ClickHouse.
run: export WAMETER_LATENESS ?= 48h
run: export WAMETER_IDLE_FLUSH ?= 5s
run: up
	bash deploy/local/run.sh

# Seeded fault injection through the real stack (role processes, broker and
# ClickHouse killed and restarted), each seed compared with the reference
# derivation table by table, with -chaos.long (a larger corpus, more faults,
# longer outages); make test runs the short variant (TestChaos).
CHAOS_SEEDS ?= 1 2 3
chaos:
	for seed in $(CHAOS_SEEDS); do \
		$(GO) test -count=1 -v -timeout 30m -run '^TestChaos$$' ./services/wameter/internal/e2e -args -chaos.seed=$$seed -chaos.long \
			| grep -E '^(=== RUN|--- |ok|FAIL|PASS)|chaos_test.go' ; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done
