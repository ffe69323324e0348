# gvs — build, test and measure. `make test` is what CI runs.
GO       ?= go
PKGS     := ./...
STATICCHECK_VERSION ?= v0.8.2

.PHONY: build test race bench fuzz lint demo replay-demo clean

build:
	$(GO) build -o bin/gvs ./cmd/gvs

# The namespace labs (internal/lab) run for about 25 minutes as root, longer than go
# test's default limit of 10 minutes per package. The packages whose tests flood
# their labs (internal/lab, and cmd/gvs's bench live smoke test) run one at a time,
# after the others: a flood fills the kernel's per-CPU receive backlog, which every
# network namespace shares, and frames another package's test sends meanwhile are
# dropped there (seen as a ring test missing a frame while a flood ran beside it).
FLOOD_PKGS := ./cmd/gvs/ ./internal/lab/

test: lint
	$(GO) test -count=1 -timeout 60m $$($(GO) list $(PKGS) | grep -v -x -e '.*/cmd/gvs' -e '.*/internal/lab')
	$(GO) test -count=1 -p 1 -timeout 60m $(FLOOD_PKGS)
	$(GO) test -count=1 -race ./sched/ ./conntrack/ ./dataplane/
	$(MAKE) fuzz

race:
	$(GO) test -count=1 -race $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Every fuzz target runs for a fixed number of executions (scripts/fuzz.sh says why not a
# duration); the seed corpora in testdata run with plain `go test`.
fuzz:
	GO=$(GO) ./scripts/fuzz.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck $(PKGS)

# The seed article's LVS-DR experiment in network namespaces (needs root).
demo: build
	./bin/gvs lab demo

# The same rewrite without namespaces: a synthetic trace replayed in-process.
replay-demo: build
	./scripts/replay-demo.sh

clean:
	rm -rf bin out
