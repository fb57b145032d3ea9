# xdrive Makefile. `make help` lists the targets.

# The release version: the manager's --version, the image tag and the chart's appVersion.
VERSION ?= 0.1.0
IMG ?= xdrive-controller:$(VERSION)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# What `--version` prints; the Dockerfile passes the same three.
LDFLAGS ?= -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
GOARCH ?= $(shell go env GOARCH)
# `make image` writes the image here: an OCI layout (oci/) and a tarball (image.tar).
IMAGE_DIR ?= dist/image
CONTAINER_TOOL ?= docker
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# v5.8.3 asks for Go 1.27; v5.8.2 (kustomize/api v0.21.2, as in go.mod) builds with Go 1.26.
KUSTOMIZE_VERSION ?= v5.8.2
# Tests of controllers run with the race detector.
GOTEST_FLAGS ?= -race -count=1 -timeout 30m
# The control-plane binaries are built once into a per-user cache (hack/envtest-assets.sh).
ENVTEST_ASSETS = $(shell $(CURDIR)/hack/envtest-assets.sh)

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and RBAC from the markers, and copy them into the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@hack/sync-chart.sh $(VERSION)

.PHONY: generate
generate: controller-gen ## Generate the deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: docs
docs: manifests ## Regenerate docs/flags.md, docs/metrics.md and docs/api.md from the flags, the metrics and the CRDs (make test fails when they are stale).
	XDRIVE_UPDATE_DOCS=1 go test -count=1 -run '^(TestFlagsDoc|TestMetricsDoc|TestAPIDoc)$$' ./cmd/ ./internal/metrics/ ./internal/docgen/

.PHONY: prices
# Where make prices reads the on-demand prices: bulk (AWS's bulk price list,
# needs the internet) or dataset (the published data of PRICES_DATASET, a Go
# module fetched through the Go module proxy).
PRICES_SOURCE ?= bulk
PRICES_DATASET ?= github.com/cristim/ec2-instances-info@v0.0.0-20250528091325-32acf84f42eb

prices: ## Regenerate the on-demand price table (internal/instances/ondemand_prices.json), every commercial region: from AWS's bulk price list (needs the internet; each region's offer file is hundreds of MB), or with PRICES_SOURCE=dataset from ec2instances.info's data in a Go module.
ifeq ($(PRICES_SOURCE),dataset)
	go run ./internal/pricing/gen --dataset $(PRICES_DATASET) --out internal/instances/ondemand_prices.json
else
	go run ./internal/pricing/gen --out internal/instances/ondemand_prices.json
endif

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run gofmt (check only), go vet, golangci-lint, and kube-api-linter on api/.
	@test -z "$$(gofmt -s -l $$(git ls-files -co --exclude-standard '*.go'))" || { echo "gofmt would change:"; gofmt -s -l $$(git ls-files -co --exclude-standard '*.go'); exit 1; }
	go vet ./...
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...
	@hack/kube-api-linter.sh

.PHONY: diagrams
diagrams: ## Rewrite docs/design.md's state diagrams from the phase tables (internal/controller/phases).
	go test -count=1 -run TestDesignDiagrams ./internal/controller/phases/ -update

.PHONY: test-deps
test-deps: ## Install shellcheck, openssh-server, ec2-metadata-mock, and QEMU, mmdebstrap, genisoimage and socat (make test-real) if missing.
	@hack/install-test-deps.sh

.PHONY: lint-api
lint-api: ## Lint api/ with kube-api-linter (built from the Go module proxy into bin/).
	@hack/kube-api-linter.sh

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver, etcd and kubectl into the per-user cache (about 12 minutes, once).
	@hack/envtest-assets.sh

# The simulation runs each world in one goroutine: it runs without the race
# detector, which would make its 2,000 seeds ten times slower.
SIM_PKG = ./test/sim/
SIM_SEEDS ?= 2000

# The fast loop while editing (CONTRIBUTING.md): the tests of api/, cmd/,
# internal/ and test/deps with -short, which skips every test that starts a
# control plane, moto, sshd, the bootstrap's sandbox or a VM, and the
# simulation with UNIT_SIM_SEEDS seeds. No lint and no race detector: make
# test runs both.
UNIT_SIM_SEEDS ?= 200
UNIT_PKGS = $(SIM_PKG) ./api/... ./cmd/... ./internal/... ./test/deps/

.PHONY: test-unit
test-unit: ## The fast loop while editing: unit tests with -short (no envtest, moto, sshd or sandbox), no lint, and 200 seeds.
	XDRIVE_SIM_SEEDS=$(UNIT_SIM_SEEDS) go test -short -count=1 -timeout 10m $(UNIT_PKGS)

.PHONY: test
test: manifests generate lint test-deps image build-installer ## Run every test: lint, unit, simulation, envtest, moto, sshd, the image, the chart, install.yaml.
	@hack/check-generated.sh
	@hack/sync-chart.sh --check $(VERSION)
	XDRIVE_SIM_SEEDS=$(SIM_SEEDS) go test -count=1 -timeout 15m $(SIM_PKG)
	@assets="$(ENVTEST_ASSETS)"; echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS="$$assets" XDRIVE_IMAGE_DIR=$(IMAGE_DIR) XDRIVE_INSTALL_YAML=dist/install.yaml go test $(GOTEST_FLAGS) $$(go list ./... | grep -v -x -F 'github.com/xdrive-io/xdrive/test/sim')

.PHONY: soak
soak: ## Run the simulation with many more seeds (SOAK_SEEDS, from a random first seed).
	XDRIVE_SIM_SEEDS=$${SOAK_SEEDS:-20000} XDRIVE_SIM_FIRST_SEED=$${SOAK_FIRST_SEED:-$$RANDOM$$RANDOM} go test -count=1 -timeout 3h -v -run TestSeeds $(SIM_PKG)

.PHONY: mutants
mutants: ## Apply each mutant of test/sim/mutants (a removed guard) to a scratch copy and fail unless the simulation (or its named test) kills it.
	@assets="$(ENVTEST_ASSETS)"; KUBEBUILDER_ASSETS="$$assets" SIM_SEEDS=$(SIM_SEEDS) hack/mutants.sh

.PHONY: test-fresh
test-fresh: ## Run make test as a fresh machine would: clean clone, empty envtest cache and GOBIN, no /run/sshd.
	@hack/test-fresh.sh test

.PHONY: bench
BENCH ?= .
BENCH_COUNT ?= 3
bench: ## Run the benchmarks, each BENCH_COUNT times (report the median): interruptions, spec change, EC2 calls, idle, scale. BENCH=regexp picks some.
	@assets="$(ENVTEST_ASSETS)"; KUBEBUILDER_ASSETS="$$assets" go test -run '^$$' -bench '$(BENCH)' -benchtime 1x -count $(BENCH_COUNT) -timeout 4h ./test/bench/...

##@ Build

.PHONY: build
build: manifests generate ## Build the manager binary and the kubectl plugin (bin/kubectl-xdrive).
	go build -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager ./cmd
	go build -ldflags "-X main.version=$(VERSION)" -o $(LOCALBIN)/kubectl-xdrive ./cmd/kubectl-xdrive

# The kubectl plugin's krew release: platforms built, and where the tarballs will be downloaded from.
KREW_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
KREW_URL_BASE ?= https://github.com/xdrive-io/xdrive/releases/download/v$(VERSION)

.PHONY: krew
krew: ## Build the kubectl plugin's tarballs and their krew manifest, dist/krew/xdrive.yaml (KREW_PLATFORMS, KREW_URL_BASE).
	hack/krew.sh $(VERSION) $(KREW_URL_BASE) dist/krew $(KREW_PLATFORMS)

.PHONY: run
run: manifests generate ## Run the manager against the current kubeconfig and AWS credentials.
	go run -ldflags "$(LDFLAGS)" ./cmd $(ARGS)

.PHONY: image
image: ## Build the manager image without Docker or a registry into $(IMAGE_DIR) (OCI layout and docker-load tarball).
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(LOCALBIN)/image/manager ./cmd
	go run ./internal/imagebuild --binary $(LOCALBIN)/image/manager --ref $(IMG) --arch $(GOARCH) \
		--version $(VERSION) --commit $(COMMIT) --created $(BUILD_DATE) --out $(IMAGE_DIR)

.PHONY: docker-build
docker-build: ## Build the manager image with Docker from the Dockerfile (IMG=...).
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg BUILD_DATE=$(BUILD_DATE) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the manager image (IMG=...).
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: demo
demo: build ## Run the whole lifecycle on a local control plane and moto, in a loopback-only namespace.
	@hack/demo.sh

DEMO_REAL_TIMEOUT ?= 100m

.PHONY: demo-real
demo-real: build test-deps ## The demo's lifecycle with a real Linux VM (QEMU) for each instance; 30-60 min under TCG.
	@hack/demo.sh --instances=vm --timeout $(DEMO_REAL_TIMEOUT)

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster.
	kubectl delete --ignore-not-found -k config/crd

# The installation's settings (config/default/settings.yaml) for make deploy
# and make build-installer; unset, settings.yaml's values stay.
CLUSTER_NAME ?=
REGION ?=
OPERATOR_CIDRS ?=
INSTALLER ?= dist/install.yaml
KUSTOMIZE_SETTINGS = CLUSTER_NAME="$(CLUSTER_NAME)" REGION="$(REGION)" OPERATOR_CIDRS="$(OPERATOR_CIDRS)"

.PHONY: deploy
deploy: manifests kustomize ## Deploy the manager with kustomize config/default, running IMG, with CLUSTER_NAME, REGION and OPERATOR_CIDRS if set.
	$(KUSTOMIZE_SETTINGS) hack/kustomize-image.sh $(KUSTOMIZE) $(IMG) | kubectl apply --server-side -f -

.PHONY: chart
chart: ## Copy the CRDs, RBAC rules and VERSION from config/ into charts/xdrive (make manifests does too; make test checks it).
	hack/sync-chart.sh $(VERSION)

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml (INSTALLER): CRDs, namespace, RBAC, Deployment and Service in one file, running IMG, with CLUSTER_NAME, REGION and OPERATOR_CIDRS if set.
	mkdir -p $(dir $(INSTALLER))
	$(KUSTOMIZE_SETTINGS) hack/kustomize-image.sh $(KUSTOMIZE) $(IMG) >$(INSTALLER).tmp
	mv $(INSTALLER).tmp $(INSTALLER)
	@echo "Wrote $(INSTALLER) (image $(IMG), cluster name $(or $(CLUSTER_NAME),from settings.yaml), region $(or $(REGION),from settings.yaml)): kubectl apply --server-side -f $(INSTALLER)"

.PHONY: undeploy
undeploy: ## Remove the manager from the cluster.
	kubectl delete --ignore-not-found -k config/default

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: kustomize
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

##@ Real instance

INSTANCEVM_TIMEOUT ?= 40m
# VMs at once; each TCG VM keeps one core busy.
INSTANCEVM_PARALLEL ?= 2

.PHONY: instancevm-image
instancevm-image: test-deps ## Build the real instance's Linux image (Debian trixie, mmdebstrap) into ~/.cache/xdrive-instancevm, once per version of its script.
	@hack/instancevm-image.sh

.PHONY: test-real
test-real: test-deps ## Boot real Linux VMs (QEMU) as instances, with the operator's user-data: the drive, Docker, carry-over and flattening, release (full disks, hung Docker), restore, spot notice.
	@img=$$(hack/instancevm-image.sh) && XDRIVE_INSTANCEVM_IMAGE="$$img" go test -tags instancevm -count=1 -v -parallel $(INSTANCEVM_PARALLEL) -timeout $(INSTANCEVM_TIMEOUT) ./test/instancevm/

.PHONY: bench-scale
bench-scale: ## The scale curve: 1k, 2k, 5k and 10k objects to Ready on the fake EC2 (time, peak RSS, EC2 calls), drawn in docs/scale-curve.png; XDRIVE_BENCH_CURVE=sizes picks others.
	@assets="$(ENVTEST_ASSETS)"; KUBEBUILDER_ASSETS="$$assets" XDRIVE_BENCH_CURVE_DIR="$(CURDIR)/docs" go test -run '^$$' -bench ScaleCurve -benchtime 1x -count 1 -timeout 6h ./test/bench/

.PHONY: bench-real
bench-real: test-deps ## Benchmark the bootstrap on real VMs: cloud-init's start to the containers running, blank and restored drive, and where the time goes.
	@img=$$(hack/instancevm-image.sh) && XDRIVE_INSTANCEVM_IMAGE="$$img" go test -tags instancevm -count=1 -v -run '^$$' -bench Bootstrap -benchtime 1x -timeout $(INSTANCEVM_TIMEOUT) ./test/instancevm/
