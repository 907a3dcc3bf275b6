# pitcrew: `make demo` runs the main job on a local sandbox; `make test` passes the tests.
GO        ?= go
BIN       := bin/pitcrew
SANDBOX   ?= .sandbox

.PHONY: build demo test vet clean sandbox-down

# CGO_ENABLED=0: pebble then takes its memtables from the Go heap (bounded by
# GOMEMLIMIT) instead of malloc, whose arenas made RSS grow with the backlog.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/pitcrew

# Sandbox up, demo schema + write workload on the source, catch-up, status, checksum compare.
demo: build
	./scripts/demo.sh $(BIN) $(SANDBOX)

# The test command CI runs (see README.md). PITCREW_REQUIRE_DB=1: no skipping for a missing MariaDB.
test:
	./scripts/ensure-mariadb.sh
	$(GO) vet ./...
	PITCREW_REQUIRE_DB=1 $(GO) test -race -count=1 -timeout 20m ./...

sandbox-down: build
	$(BIN) sandbox down --dir $(SANDBOX)

clean:
	rm -rf bin
