# kube-vip-cloud-provider: the commands a developer and CI need.
# `make test` installs everything it needs (the envtest control plane is
# built from source through the Go module proxy when it cannot be downloaded).

GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
IMAGE     ?= kube-vip-cloud-provider:dev
BIN       := bin
comma     := ,

.PHONY: all build test lint unit envtest fuzz bench bench-controller run sim image clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## lint: gofmt and go vet must be clean.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## envtest: make kube-apiserver and etcd available (prints their directory).
envtest:
	@hack/envtest.sh >/dev/null

## test: lint, then every test (unit, properties, fuzz corpora, envtest).
test: lint
	@assets=$$(hack/envtest.sh | tail -n 1) && \
	  echo "envtest control plane: $$assets" && \
	  KUBEBUILDER_ASSETS="$$assets" $(GO) test -count=1 -timeout 60m ./...

## unit: the tests that need no API server.
unit:
	$(GO) test -count=1 ./allocator/... ./controller/decide/... ./sim/...

## fuzz: run every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

## bench: the allocator and simulator benchmarks.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./allocator/... ./sim/...

## run: the controller against $$KUBECONFIG's cluster, or, with none, against
## a local control plane with the example ConfigMap and a few Services.
run:
	@if [ -n "$$KUBECONFIG" ]; then \
	  echo "Running against the cluster in KUBECONFIG=$$KUBECONFIG (leader election off)"; \
	  $(GO) run ./cmd/kube-vip-cloud-provider --leader-elect=false; \
	else \
	  echo "KUBECONFIG is not set: starting a local control plane"; \
	  assets=$$(hack/envtest.sh | tail -n 1) && KUBEBUILDER_ASSETS="$$assets" $(GO) run ./hack/localcluster; \
	fi

## bench-controller: N Services against a real API server (figures in the README).
bench-controller:
	@assets=$$(hack/envtest.sh | tail -n 1) && KUBEBUILDER_ASSETS="$$assets" $(GO) run ./hack/benchcontroller -n $(or $(N),1000$(comma)5000)

## sim: replay every example scenario through the simulator.
sim:
	$(GO) run ./cmd/kube-vip-sim replay sim/scenarios/*.yaml

## image: the controller's container image (needs a Docker engine).
image:
	@command -v docker >/dev/null || { echo "make image: docker is not installed (https://docs.docker.com/engine/install/)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker engine is running (docker info fails); start one first"; exit 1; }
	docker build -t $(IMAGE) .

clean:
	rm -rf $(BIN)
