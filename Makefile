# pitcrew: `make demo` runs the main job on a local sandbox; `make test` passes the tests.
GO        ?= go
BIN       := bin/pitcrew
SANDBOX   ?= .sandbox

VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILDDATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(REVISION) -X main.date=$(BUILDDATE)

.PHONY: build demo test corpus vet clean sandbox-down image

# CGO_ENABLED=0: pebble then takes its memtables from the Go heap (bounded by
# GOMEMLIMIT) instead of malloc, whose arenas made RSS grow with the backlog.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pitcrew

# The OCI image (static binary, CA certificates, non-root user), built without
# a container daemon: bin/image (OCI layout) and bin/pitcrew-image.tar
# (docker load -i / podman load -i).
image: build
	$(GO) run ./internal/jobs/image/mkimage -binary $(BIN) -version $(VERSION) -revision "$(REVISION)" -layout bin/image -tar bin/pitcrew-image.tar

# Sandbox up, demo schema + write workload on the source, catch-up, status, checksum compare.
demo: build
	./scripts/demo.sh $(BIN) $(SANDBOX)

# The test command CI runs (see README.md). PITCREW_REQUIRE_DB=1: no skipping for a missing MariaDB.
test:
	./scripts/ensure-mariadb.sh
	./scripts/ensure-chromium.sh
	$(GO) vet ./...
	PITCREW_REQUIRE_DB=1 $(GO) test -race -count=1 -timeout 20m ./...

# The long form of the corpus (the short form runs in make test): a source with a
# native replica and pitcrew behind it, 150 rounds of generated schemas and DML,
# pitcrew's target compared with the native replica every 10 rounds.
# CORPUS_FLAGS='-corpus.cases=fk_cascade,triggers' runs cases by name (pending ones too).
corpus:
	./scripts/ensure-mariadb.sh
	PITCREW_REQUIRE_DB=1 $(GO) test -race -count=1 -timeout 60m ./corpus/ -run TestCorpus -v -corpus.long $(CORPUS_FLAGS)

sandbox-down: build
	$(BIN) sandbox down --dir $(SANDBOX)

clean:
	rm -rf bin
