# grid4 — see README.md.
GO ?= go
PKGS ?= ./...
# Where the tests find PostgreSQL and Redis (scripts/test-services.sh makes them so).
export GRID4_TEST_POSTGRES ?= postgres://postgres:postgres@127.0.0.1:5432/grid4_test?sslmode=disable
export GRID4_TEST_REDIS ?= redis://127.0.0.1:6379/0

.PHONY: all build test test-services lint fmt-check tidy-check funclen vet staticcheck unit fuzz bench clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...
	@# The guest init runs in an initramfs without a dynamic loader: static, whatever the toolchain's default.
	CGO_ENABLED=0 $(GO) build -o bin/g4init ./cmd/g4init

## test: everything CI runs — services, formatting, vet, staticcheck, race tests.
test: test-services lint unit

test-services:
	bash scripts/test-services.sh

lint: fmt-check tidy-check funclen vet staticcheck

fmt-check:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## tidy-check: fails when go mod tidy would change go.mod or go.sum.
tidy-check:
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

## funclen: fails when a function outside tests is over 100 lines.
funclen:
	@$(GO) run scripts/funclen.go .

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## fuzz: run every fuzz target of every package for FUZZTIME each (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
			echo "fuzz $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin/
