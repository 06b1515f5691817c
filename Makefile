# ebb — see README.md. Every target that needs a real component provides it first, idempotently.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/ebbscale/ebb/internal/version.Version=$(VERSION)
# Images (hack/image, no Docker daemon): tagged with VERSION, labelled with the commit; every timestamp in
# them is the commit's time, so one commit builds the same image twice. IMAGE is where image-push pushes.
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_FLAGS = --version '$(VERSION)' --revision '$(REVISION)' --created '$(SOURCE_DATE_EPOCH)'
IMAGE ?=
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
# Real-component tests start control planes and talk to brokers; give them room on a 2-core machine.
# -count=1: the test cache cannot see broker or control-plane state, so a cached pass would prove nothing.
TEST_TIMEOUT ?= 30m
TEST_FLAGS ?=
# The unit tier (make test-unit) is `go test -short`: every testenv function that provides a component
# (control plane, broker, node, tool, built binary) skips the test under -short (testenv.Requires). So that a
# test reaching a component some other way fails rather than quietly passing, the tier runs with nothing to
# reach: no control-plane binaries (an empty KUBEBUILDER_ASSETS and a cache directory that does not exist),
# broker addresses on a closed port, and a PATH with no tools for the test binaries. Its results may be
# cached: a unit test depends on nothing outside its process.
NO_TOOLS := /nonexistent/ebb-test-unit
UNIT_ENV := KUBEBUILDER_ASSETS= EBB_CACHE_DIR=$(NO_TOOLS) EBB_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:1/ \
	EBB_RABBITMQ_HTTP_URL=http://guest:guest@127.0.0.1:1/ EBB_NATS_URL=nats://127.0.0.1:1
# Benchmarks: the ones against a control plane report latency percentiles, and 5 s per sub-benchmark gives
# each thousands of samples (about 4,000 at 1.2 ms a request), enough for a p99. BENCH selects benchmarks
# (-bench), BENCH_FLAGS adds flags (e.g. -count=3 for benchstat, -cpuprofile with one package).
BENCH ?= .
BENCHTIME ?= 5s
BENCH_FLAGS ?=
# Flags for `make demo`, e.g. DEMO_FLAGS='--demo-burst 8000 --demo-cooldown 30s'.
DEMO_FLAGS ?=

.PHONY: build
build: ## Build bin/ebb.
	go build -ldflags '$(LDFLAGS)' -o bin/ebb ./cmd/ebb

.PHONY: kubectl-plugin
kubectl-plugin: build ## Link bin/kubectl-ebb to bin/ebb: with it on PATH, kubectl ebb explain NAME -n NS works.
	ln -sf ebb bin/kubectl-ebb

.PHONY: image
image: ## Build ebb's image, ghcr.io/ebbscale/ebb:$(VERSION), as bin/ebb-image.tar (docker load, ctr import, kind load).
	go run ./hack/image $(IMAGE_FLAGS) --image ebb

.PHONY: images
images: ## Build the ebb, pause and example consumer images as bin/{ebb,pause,consumer}-image.tar.
	go run ./hack/image $(IMAGE_FLAGS) --image ebb,pause,consumer

.PHONY: image-push
image-push: ## Build ebb's image and push it: make image-push IMAGE=registry.example.com/ebb:v0.1.0.
	@test -n '$(IMAGE)' || { echo 'make image-push: set IMAGE=registry/name:tag' >&2; exit 1; }
	go run ./hack/image $(IMAGE_FLAGS) --image ebb --ref '$(IMAGE)' --push

.PHONY: demo
demo: build ## Run the demo (ebb dev --demo --node; consumers as real pods as root, else simulated): a burst of events, 0 -> N -> 0 replicas, a live timeline and an SVG of it.
	bin/ebb dev --demo --node $(DEMO_FLAGS)

.PHONY: tools
tools: ## Provide the control-plane binaries, RabbitMQ, NATS and kcat (idempotent).
	@hack/setup-test-env.sh >/dev/null

.PHONY: test
test: tools ## Run every test, the real-component ones included.
	KUBEBUILDER_ASSETS="$$(hack/install-control-plane.sh)" go test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...

.PHONY: test-unit
test-unit: ## Run the tests that need no component (go test -short; under a minute, no server, no make tools).
	$(UNIT_ENV) go test -short -vet=off -timeout 5m -exec 'env PATH=$(NO_TOOLS)' $(TEST_FLAGS) ./...

.PHONY: bench
bench: tools ## Run the Go benchmarks (results go to docs/benchmarks.md by hand, with this command).
	KUBEBUILDER_ASSETS="$$(hack/install-control-plane.sh)" go test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -timeout 60m $(BENCH_FLAGS) ./...

.PHONY: generate
generate: ## Regenerate deepcopy functions, CRDs, the controller's RBAC and the trigger parameter docs.
	# gotypesalias=0: controller-gen v0.23's deepcopy generator cannot copy a map whose value type is an alias
	# (api/v1alpha1.MetadataValue, which carries the metadata values' bound into the CRD).
	GODEBUG=gotypesalias=0 go tool controller-gen object paths=./api/...
	go tool controller-gen crd paths=./api/... output:crd:artifacts:config=manifests/crd
	go tool controller-gen rbac:roleName=ebb-controller paths=./controller/... output:rbac:artifacts:config=manifests/rbac
	go run ./hack/gen-trigger-docs > docs/scalers/parameters.md

.PHONY: lint
lint: ## go vet and golangci-lint (staticcheck, importas aliases, errcheck, ...).
	go vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: lint ## Formatting, lint, go.mod tidiness and generated files up to date.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	hack/verify-generated.sh

.PHONY: clean
clean:
	rm -rf bin

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12
