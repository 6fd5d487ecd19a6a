# Custos — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/custos
DATA  ?= ./data
ADDR  ?= 127.0.0.1:8080
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build run test test-deps lint unit bench fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/custos

# Starts Custos on the embedded SQLite database in ./data. The first run
# creates the root key and the database and prints how to log in.
run: build
	./$(BIN) serve --data $(DATA) --addr $(ADDR)

# Installs what the tests need (only what is missing), then runs the checks
# and every test on SQLite and PostgreSQL (the tests start a throwaway
# PostgreSQL cluster themselves).
test: test-deps lint unit

test-deps:
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-chromium.sh
	@bash scripts/ensure-maildev.sh >/dev/null
	@bash scripts/ensure-minio.sh >/dev/null
	@test -x $(STATICCHECK) || { echo "installing staticcheck"; $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2; }

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# Benchmarks: encrypted vs no-op sealer; a full backup's MB/s and an incremental
# after 1% of changes as a share of it (time and size); the customer pages
# against the JSON API returning the same data (page/api); each in one run.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/crm/
	$(GO) test -run '^$$' -bench Backup -benchtime 3x -timeout 30m ./internal/backup/
	$(GO) test -run '^$$' -bench UIPages -benchtime 100x ./internal/web/

# A short fuzzing pass over every fuzz target (not part of make test).
fuzz:
	@for pkg in ./internal/seal ./internal/normalize ./internal/csvio ./internal/customercsv; do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 15s $$pkg || exit 1; done; done

clean:
	rm -rf bin
