# The two commands: `make run` (the demo) and `make test` (the whole suite).
# Both install what they need on a fresh Debian machine.

BIN       := .bin/ordertune
GO        ?= go
TESTFLAGS ?=
# The browser tests run axe-core on every page in two schemes at two widths;
# on a busy 2-core machine cmd/ordertune alone takes well over 10 minutes.
TEST_TIMEOUT ?= 30m

.PHONY: run test build lint fmt-check vet deps-run deps-test clean

run: deps-run build
	$(BIN) demo

build:
	@mkdir -p $(dir $(BIN))
	$(GO) build -o $(BIN) ./cmd/ordertune

test: deps-test fmt-check vet build
	$(BIN) devdb -- $(GO) test $(TESTFLAGS) -race -timeout $(TEST_TIMEOUT) ./...

lint: fmt-check vet

fmt-check:
	@out=$$(gofmt -l cmd internal migrations web api scripts 2>/dev/null); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

deps-run:
	@scripts/ensure-deps.sh postgres

deps-test:
	@scripts/ensure-deps.sh postgres chromium nginx

clean:
	rm -rf .bin
