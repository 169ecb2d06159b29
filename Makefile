# packflow — run `make help` for the targets.
GO        ?= go
SHELL     := bash
BIN       := bin/packflow
PKGS      := ./...
FUZZTIME  ?= 10s
GOLANGCI  := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
STATICCHK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/packflow.
	$(GO) build -trimpath -o $(BIN) ./cmd/packflow

.PHONY: install
install: ## Install packflow on PATH (into $(go env GOBIN), else $(go env GOPATH)/bin).
	$(GO) install -trimpath ./cmd/packflow

.PHONY: run
run: ## Start the whole platform on the embedded default (packflow dev).
	$(GO) run ./cmd/packflow dev

.PHONY: test
test: ## go vet + all tests under -race, with a count of passed, failed and skipped tests at the end.
	$(GO) vet $(PKGS)
	set -o pipefail; $(GO) test -race -json -timeout 15m $(PKGS) | $(GO) run ./scripts/testreport

.PHONY: lint
lint: ## go vet, staticcheck and golangci-lint (.golangci.yml).
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHK) $(PKGS)
	$(GO) run $(GOLANGCI) run $(PKGS)

.PHONY: bench
bench: ## Benchmarks against their baselines, same run: prints a table, writes bench-results.json.
	scripts/bench-setup.sh
	$(GO) run ./cmd/packflow-bench -out bench-results.json

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s).
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: clean
clean: ## Remove build output, bench results and fuzz caches.
	rm -rf bin bench-results.json
	$(GO) clean -testcache -fuzzcache
