# The README's commands are targets here.
#   make up    build moat with the examples inside and start it
#   make test  run every test (what CI runs)

GO       ?= go
BIN      ?= bin/moat
DATA_DIR ?=

-include mk/examples.mk
-include mk/sensor.mk

.PHONY: build up test vet bench fuzz clean

build: $(EXAMPLE_ZIPS)
	@echo "building $(BIN) (the first build downloads and compiles the dependencies: a minute or two)"
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/moat

up: build
	@echo "starting moat: the API on 127.0.0.1:9000, function URLs on 127.0.0.1:9002 (Ctrl-C stops it)"
	$(BIN) up --examples $(if $(DATA_DIR),--data-dir $(DATA_DIR))

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# Tests that need root, cgroups or namespaces run for real; under CI=true a
# missing capability fails them instead of skipping. gotestsum (pinned in
# go.mod) runs go test and ends with a summary: every skipped test with its
# reason, every failure, and one DONE line with the counts.
test: vet
	$(GO) tool gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg -- \
		-race -count=1 -timeout 20m ./... ./testdata/functions/...

bench:
	$(GO) run ./bench -duration 10s

# Run one fuzz target for a while: make fuzz FUZZ=FuzzVerify PKG=./internal/sigv4
FUZZ ?= FuzzVerify
PKG  ?= ./internal/sigv4
fuzz:
	$(GO) test -run '^$$' -fuzz '^$(FUZZ)$$' -fuzztime 60s $(PKG)

clean:
	rm -rf bin
