# kube-vip-cloud-provider: the commands a developer and CI need.
# `make test` installs everything it needs (the envtest control plane is
# built from source through the Go module proxy when it cannot be downloaded).

GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
IMAGE     ?= kube-vip-cloud-provider:dev
BIN       := bin
comma     := ,
# The broken-engine tests: they run only with -tags mutants (internal/mutant).
MUTANT_PKGS := ./controller/decide/... ./controller/engine/... ./sim/...

.PHONY: all build test lint unit envtest fuzz bench bench-controller run run-cluster metrics kubectl sim image e2e e2e-local kube-vip kind-image clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/... ./hack/localcluster

## lint: gofmt and go vet must be clean.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## envtest: make kube-apiserver and etcd available (prints their directory).
envtest:
	@hack/envtest.sh >/dev/null

## test: lint, then every test (unit, properties, fuzz corpora, envtest),
## then the broken-engine tests (-tags mutants).
test: lint
	@assets=$$(hack/envtest.sh | tail -n 1) && \
	  echo "envtest control plane: $$assets" && \
	  KUBEBUILDER_ASSETS="$$assets" $(GO) test -count=1 -timeout 60m ./...
	$(GO) test -count=1 -tags mutants $(MUTANT_PKGS)

## unit: the tests that need no API server (and the broken-engine tests).
unit:
	$(GO) test -count=1 ./allocator/... ./controller/decide/... ./sim/...
	$(GO) test -count=1 -tags mutants $(MUTANT_PKGS)

## fuzz: run every fuzz target for FUZZTIME each. The targets are found by
## name (func FuzzXxx in a _test.go file), so only their packages compile.
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$dir $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; done

## bench: the allocator and simulator benchmarks.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./allocator/... ./sim/...

## run: a local control plane (kube-apiserver and etcd), the example
## ConfigMap and the controller binary, until Ctrl-C (which exits 0);
## NO_CONTROLLER=1 starts the cluster alone. See docs/local-cluster.md.
run: build
	@command -v kubectl >/dev/null || echo "make run: kubectl is not on your PATH: use $$(hack/kubectl.sh | tail -n 1) (built from source)"
	@assets=$$(hack/envtest.sh | tail -n 1) && KUBEBUILDER_ASSETS="$$assets" $(BIN)/localcluster

## run-cluster: the controller against $$KUBECONFIG's cluster, with leader
## election: while an installed controller leads, this one stands by.
run-cluster: build
	@[ -n "$$KUBECONFIG" ] || { echo "make run-cluster: set KUBECONFIG to the cluster to run against (make run starts a local one)"; exit 1; }
	$(BIN)/kube-vip-cloud-provider --metrics-bind-address=127.0.0.1:8443 --health-probe-bind-address=127.0.0.1:8081

## metrics: scrape the /metrics of make run's controller with a
## ServiceAccount's token, as Prometheus would (hack/metrics.sh).
metrics:
	@hack/metrics.sh

## kubectl: build kubectl of the control plane's version (prints its path).
kubectl:
	@hack/kubectl.sh | tail -n 1

## bench-controller: N Services against a real API server (figures in the README).
bench-controller:
	@assets=$$(hack/envtest.sh | tail -n 1) && KUBEBUILDER_ASSETS="$$assets" $(GO) run ./hack/benchcontroller -n $(or $(N),1000$(comma)5000)

## sim: replay every example scenario through the simulator.
sim:
	$(GO) run ./cmd/kube-vip-sim replay sim/scenarios/*.yaml

## e2e-local: the end-to-end suite on a local control plane; with
## KUBE_VIP_BINARY=<path> it also runs kube-vip in network namespaces (root).
e2e-local:
	@echo "e2e: local control plane (envtest), the controller binary as a process with the manifest's RBAC"
	@if [ -n "$$KUBE_VIP_BINARY" ]; then echo "e2e: kube-vip from $$KUBE_VIP_BINARY in network namespaces"; \
	  else echo "e2e: KUBE_VIP_BINARY not set: advertising specs will be skipped"; fi
	@assets=$$(hack/envtest.sh | tail -n 1) && KUBEBUILDER_ASSETS="$$assets" $(GO) test -count=1 -v -timeout 20m ./e2e/

## kube-vip: build kube-vip into bin/ from KUBE_VIP_SOURCE, a copy of its
## source (https://github.com/kube-vip/kube-vip: the Go module proxy does
## not serve it); its own go.mod decides its dependencies.
kube-vip:
	@[ -n "$(KUBE_VIP_SOURCE)" ] || { echo "make kube-vip: set KUBE_VIP_SOURCE to a copy of kube-vip's source, e.g. git clone https://github.com/kube-vip/kube-vip"; exit 1; }
	@grep -qs '^module github.com/kube-vip/kube-vip$$' "$(KUBE_VIP_SOURCE)/go.mod" || { echo "make kube-vip: KUBE_VIP_SOURCE=$(KUBE_VIP_SOURCE) is not kube-vip's source (no go.mod of module github.com/kube-vip/kube-vip)"; exit 1; }
	@mkdir -p $(BIN)
	cd "$(KUBE_VIP_SOURCE)" && GOFLAGS= GOWORK=off CGO_ENABLED=0 $(GO) build -o "$(abspath $(BIN))/kube-vip" .
	@echo "make kube-vip: built $(abspath $(BIN))/kube-vip; run the e2e with it as root: KUBE_VIP_BINARY=$(abspath $(BIN))/kube-vip make e2e-local"

## kind-image: the kind node image of `make e2e`, from Debian packages and Go
## source only, nothing pulled (hack/kindimage/build.sh; KUBE_VIP_SOURCE is a
## copy of kube-vip's source). About an hour the first time; cached after
## under ~/.cache/kube-vip-cloud-provider/kind, so a rerun takes seconds.
kind-image:
	@command -v docker >/dev/null || { echo "make kind-image: docker is not installed: install Docker Engine (https://docs.docker.com/engine/install/)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make kind-image: no Docker engine is running (docker info fails): start one, e.g. sudo systemctl start docker"; exit 1; }
	@KUBE_VIP_SOURCE="$(if $(KUBE_VIP_SOURCE),$(abspath $(KUBE_VIP_SOURCE)))" hack/kindimage/build.sh >/dev/null

## e2e: the same suite on a kind cluster made from the node image of
## `make kind-image` (Docker and root); KEEP=1 keeps the cluster.
e2e: kind-image
	@echo "e2e: kind cluster kvcp-e2e from kind/cluster.yaml, the controller's image kube-vip-cloud-provider:e2e (make image), kube-vip from kind/kube-vip.yaml"
	@echo "e2e: the cluster is deleted at the end$(if $(KEEP),; KEEP=1: it is kept), also on failure or Ctrl-C"
	E2E_PROVIDER=kind $(GO) test -count=1 -v -timeout 40m ./e2e/ -args $(if $(KEEP),-keep)

## image: the controller's container image (needs a Docker engine): the
## static binary on an empty base, so nothing is pulled.
image:
	@command -v docker >/dev/null || { echo "make image: docker is not installed (https://docs.docker.com/engine/install/)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker engine is running (docker info fails); start one first"; exit 1; }
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/kube-vip-cloud-provider ./cmd/kube-vip-cloud-provider
	DOCKER_BUILDKIT=0 docker build -q -t $(IMAGE) .

clean:
	rm -rf $(BIN)
