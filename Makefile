# imgpipe — every command a newcomer needs. `make dev` runs the product on the
# local emulators; `make test` runs every test on its own set of emulators.
SHELL := /bin/bash
BIN := .bin
LOCAL_PROJECT := imgpipe-local

# Fixed loopback ports. Dev and test use different ones, so `make test` runs
# while `make dev` is up.
DEV_HOST := 127.0.0.1:8080
DEV_PORTS := -pubsub 8085 -firestore 8086 -gcs 4443 -tasks 8123
TEST_PORTS := -pubsub 18085 -firestore 18086 -gcs 14443 -tasks 18123
DEMO_PORTS := -pubsub 28085 -firestore 28086 -gcs 24443 -tasks 28123
BENCH_PORTS := -pubsub 38085 -firestore 38086 -gcs 34443 -tasks 38123
FUZZTIME ?= 60s
# Each fuzz target, bounded. make test gives each a count of inputs (about
# 10 s here): a count has no deadline, and Go 1.26's fuzz coordinator can
# fail a target whose -fuzztime deadline races a busy worker
# (golang/go#75804, fixed in 1.27). make fuzz runs each for FUZZTIME.
# FuzzSized's inputs are whole photographs: minimising each new
# interesting one could take a minute of its runs, so 50 runs are its cap.
fuzz_all = go test -run='^$$' -fuzz=FuzzParseCSV -fuzztime=$(1) ./shared/batch \
	&& go test -run='^$$' -fuzz=FuzzCompress -fuzztime=$(2) ./shared/imagework \
	&& go test -run='^$$' -fuzz=FuzzRecompress -fuzztime=$(3) ./shared/jpegdct \
	&& go test -run='^$$' -fuzz=FuzzUpload -fuzztime=$(4) ./functions \
	&& go test -run='^$$' -fuzz=FuzzParseSizing -fuzztime=$(5) ./shared/batch \
	&& go test -run='^$$' -fuzz=FuzzSized -fuzztime=$(6) -fuzzminimizetime=50x ./shared/imagework
FUZZ = $(call fuzz_all,150000x,2000x,1200x,30000x,200000x,2000x)
STACK := $(BIN)/stack
STACK_FLAGS := -bin $(BIN) -project $(LOCAL_PROJECT)

SHARP_VERSION := 0.35.5
REDOCLY_VERSION := 2.77.0
BENCH_REPS ?= 3

# Deploying: make deploy PROJECT=my-project [REGION=us-central1]
TF := TF_IN_AUTOMATION=1 terraform -chdir=terraform
CDKTF_GOOGLE := @cdktf/provider-google@16.12.1
CDKTF_TIME := @cdktf/provider-time@11.0.1

.PHONY: help tools chromium dev demo bench bench-pipeline load fuzz faults test test-unit lint deploy rotate-secrets deploy-check source tf-schema emulators-up emulators-down emulators-status clean

help:
	@echo "make dev              emulators + function host on $(DEV_HOST); Ctrl-C stops all"
	@echo "make demo             upload testdata/sample.csv on a fresh local stack, print status, report, outputs"
	@echo "make test             lint, deploy checks, unit and integration tests on their own emulators"
	@echo "make lint             gofmt, go vet and staticcheck on both modules"
	@echo "make openapi-lint     functions/openapi.yaml against Redocly CLI's recommended rules (part of make test)"
	@echo "make faults           only the fault-injection suite, on its own emulators"
	@echo "make bench            imgpipe vs sharp vs the stdlib path on real photographs (fetched into .bench/)"
	@echo "make load             20,000 images through the local stack: images/s and where the time goes"
	@echo "make fuzz             every fuzz target for FUZZTIME (default 60s) each"
	@echo "make deploy PROJECT=P [REGION=R]   build the source archive, terraform apply, print the API URL"
	@echo "make rotate-secrets PROJECT=P   write changed terraform/.webhook-secrets or .view-link-keys as new versions, then deploy"
	@echo "make deploy-check     offline: terraform fmt, provider schema, wiring and archive checks (part of make test)"
	@echo "make emulators-up     start the dev emulators in the background (ports 8085 8086 4443 8123)"
	@echo "make emulators-down   stop them (by the PIDs recorded in .stack/dev/pids)"

# Builds our tools and fake-gcs-server (pinned in emulators/go.mod). The Go
# build cache makes a second run take a second.
tools:
	@mkdir -p $(BIN)
	@cd emulators && go build -o ../$(BIN)/ ./cmd/stack ./cmd/cloudtasks-emulator \
	  && go build -o ../$(BIN)/fake-gcs-server github.com/fsouza/fake-gcs-server
	@go build -o $(BIN)/ ./functions/cmd/devhost ./functions/cmd/demo

emulators-up: tools
	@$(STACK) up $(STACK_FLAGS) -dir .stack/dev $(DEV_PORTS)

emulators-down:
	@if [ -x $(BIN)/stack ]; then $(STACK) down $(STACK_FLAGS) -dir .stack/dev $(DEV_PORTS); fi

emulators-status: tools
	@$(STACK) status $(STACK_FLAGS) -dir .stack/dev $(DEV_PORTS)

dev: tools
	@$(STACK) up $(STACK_FLAGS) -dir .stack/dev $(DEV_PORTS)
	@trap '$(STACK) down $(STACK_FLAGS) -dir .stack/dev; echo "stopped"' EXIT; \
	  set -a; . .stack/dev/env; set +a; \
	  IMGPIPE_BUCKET=imgpipe-local-images $(STACK) run -dir .stack/dev -- $(BIN)/devhost -addr $(DEV_HOST)

demo: tools
	@$(STACK) up $(STACK_FLAGS) -dir .stack/demo $(DEMO_PORTS)
	@trap '$(STACK) down $(STACK_FLAGS) -dir .stack/demo' EXIT; \
	  set -a; . .stack/demo/env; set +a; \
	  IMGPIPE_BUCKET=imgpipe-demo-images $(BIN)/demo -addr 127.0.0.1:28080 -images 127.0.0.1:8090

# staticcheck is pinned as a tool in the root go.mod; one binary checks both
# modules.
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt would change: $$bad"; exit 1; fi
	@go vet -tags faults ./... && (cd emulators && go vet ./...)
	@mkdir -p $(BIN) && go build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
	@$(BIN)/staticcheck -tags faults ./... && (cd emulators && ../$(BIN)/staticcheck ./...) && echo "lint: gofmt, go vet, staticcheck clean"

# The API's contract against Redocly CLI's recommended rules: errors fail,
# warnings are shown. The CLI comes from npm, pinned, into .bin/redocly.
.PHONY: openapi-lint
openapi-lint:
	@if [ "$$(cat $(BIN)/redocly/version 2>/dev/null)" != "$(REDOCLY_VERSION)" ]; then \
	  echo "installing @redocly/cli@$(REDOCLY_VERSION) into $(BIN)/redocly (npm)"; \
	  rm -rf $(BIN)/redocly && mkdir -p $(BIN)/redocly && cd $(BIN)/redocly && npm init -y >/dev/null \
	  && npm install --no-audit --no-fund --loglevel=error @redocly/cli@$(REDOCLY_VERSION) >/dev/null \
	  && echo $(REDOCLY_VERSION) > version || exit 1; fi
	@out=$$(REDOCLY_TELEMETRY=off $(BIN)/redocly/node_modules/.bin/redocly lint --extends recommended \
	  --format stylish functions/openapi.yaml 2>&1) \
	  || { echo "$$out"; echo "openapi-lint: functions/openapi.yaml fails Redocly's recommended rules"; exit 1; }; \
	  echo "$$out" | grep -E '^ +[0-9]+:[0-9]+ +warning' || true; \
	  echo "openapi-lint: functions/openapi.yaml passes Redocly CLI $(REDOCLY_VERSION)'s recommended rules"

# Offline checks of what make deploy would apply: formatting, every
# resource against the pinned providers' schemas (terraform/schema), the
# production-only rules (waits, secrets, IAM, sizing, delivery, filters),
# the local stack's wiring against Terraform's, the webhook token check, and
# the source archive built alone the way the buildpack builds it; then
# terraform validate and terraform test with mocked providers where the
# providers can be installed (TF_PROVIDER_MIRROR names a local mirror).
deploy-check:
	@if command -v terraform >/dev/null; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -diff -recursive terraform \
	  || { echo "terraform fmt: run terraform fmt terraform"; exit 1; }; \
	  else echo "deploy-check: no terraform binary; formatting is checked by TestTerraformFormatted alone"; fi
	@go test -count=1 ./functions/deploy/ ./shared/invoker/ ./shared/config/
	@terraform/provider-check.sh

# The function source archive, named by its content hash.
source:
	@go run ./functions/cmd/imgpipe-source -o $(BIN)/source

# Regenerates terraform/schema/{google,time}.json from the npm packages of
# the provider schemas for the pinned versions (after adding a resource type).
tf-schema:
	@for pkg in $(CDKTF_GOOGLE) $(CDKTF_TIME); do \
	  name=$$(echo $$pkg | sed 's|@cdktf/provider-||; s|@.*||'); \
	  mkdir -p $(BIN)/cdktf-$$name && (cd $(BIN)/cdktf-$$name && rm -rf package *.tgz \
	    && npm pack --silent $$pkg >/dev/null && tar xzf *.tgz) || exit 1; \
	  node terraform/schema/generate.mjs $(BIN)/cdktf-$$name/package terraform > terraform/schema/$$name.json || exit 1; \
	  echo "terraform/schema/$$name.json regenerated from $$pkg"; \
	done

# Applies terraform/ to PROJECT (terraform/deploy.sh). Two secrets are kept
# in Secret Manager, and a copy of each in a file git ignores: the webhook
# signing secret (terraform/.webhook-secrets, for webhook receivers too) and
# the status link key (terraform/.view-link-keys, for the functions alone).
# The first deploy generates them; a deploy from another machine fetches
# them; make rotate-secrets writes a changed file as a new version
# (terraform/README.md says how to rotate). REGION is passed on only when
# given here, so terraform.tfvars can set it.
deploy rotate-secrets:
	@if [ -z "$(PROJECT)" ]; then echo "usage: make $@ PROJECT=my-project [REGION=us-central1]"; exit 2; fi
	@command -v terraform >/dev/null || { echo "make $@ needs terraform >= 1.11 on PATH"; exit 1; }
	@command -v gcloud >/dev/null || { echo "make $@ needs gcloud, signed in (gcloud auth login and gcloud auth application-default login)"; exit 1; }
	@archive=$$(go run ./functions/cmd/imgpipe-source -o $(BIN)/source) || exit 1; \
	  terraform/deploy.sh $(if $(filter rotate-secrets,$@),rotate,deploy) $(PROJECT) $(CURDIR)/$$archive \
	    $(if $(filter command line,$(origin REGION)),-var region=$(REGION)) && \
	  echo && echo "imgpipe is up: $$($(TF) output -raw api_url)" && \
	  echo "First API key (printed once):" && \
	  echo "  GOOGLE_CLOUD_PROJECT=$(PROJECT) go run ./functions/cmd/imgpipe-keys create -name first-key" && \
	  echo "Then: curl -H 'X-API-Key: KEY' -F csv=@testdata/sample.csv $$($(TF) output -raw api_url)/api/upload"

# Without emulators: every test that needs none runs, the others are
# reported as skipped with the reason.
test-unit:
	@go test ./... && (cd emulators && go test ./...)

# Every package runs; the ones that need no emulator, and the Firestore
# adapter whose uploads write from goroutines, run under the race detector.
# A skipped test fails the run: IMGPIPE_REQUIRE_EMULATORS=1 turns a missing
# emulator into a failure, and any other skip is caught in the log.
E2E_PKGS := ./functions ./functions/localstack
MODULE := github.com/imgpipe/imgpipe
# The status page's test drives Debian's Chromium; installed when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing chromium (apt-get), for the status page's browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The suite runs as a process group of its own (stack run, recorded in
# .stack/test/pids/run.pid): a run killed before it could stop its tests
# and emulators leaves them recorded, and the next run's stack up stops
# them first, so its ports are free.
test: lint openapi-lint deploy-check tools chromium
	@start=$$(date +%s); \
	  $(STACK) up $(STACK_FLAGS) -dir .stack/test $(TEST_PORTS) || exit 1; \
	  trap '$(STACK) down $(STACK_FLAGS) -dir .stack/test' EXIT; \
	  $(STACK) run -dir .stack/test -- $(MAKE) --no-print-directory test-suite; rc=$$?; \
	  echo "make test: $$(( $$(date +%s) - start ))s, exit $$rc"; \
	  exit $$rc

# make test's suite, on the emulators make test started.
.PHONY: test-suite
test-suite:
	@set -a; . .stack/test/env; set +a; export IMGPIPE_REQUIRE_EMULATORS=1; \
	  log=.stack/test/go-test.log; rc=0; \
	  unit=$$(go list ./... | grep -v -x $(foreach p,$(E2E_PKGS),-e '$(MODULE)$(patsubst .%,%,$(p))')); \
	  { go test -count=1 -race -v $$unit || rc=1; \
	    go test -count=1 -tags faults -v $(E2E_PKGS) || rc=1; \
	    (cd emulators && go test -count=1 -race -v ./...) || rc=1; echo "rc=$$rc" > $$log.rc; } 2>&1 \
	    | tee $$log | grep --line-buffered -E '^(ok|FAIL|--- FAIL|--- SKIP|panic:|WARNING: DATA RACE)'; \
	  rc=$$(sed -n 's/^rc=//p' $$log.rc); \
	  if grep -q -e '--- SKIP' $$log; then echo "make test: a test was skipped (see $$log): that fails the run"; rc=1; fi; \
	  $(FUZZ) || rc=1; \
	  exit $$rc

fuzz: tools
	@$(STACK) up $(STACK_FLAGS) -dir .stack/test $(TEST_PORTS) >/dev/null || exit 1; \
	  trap '$(STACK) down $(STACK_FLAGS) -dir .stack/test' EXIT; \
	  set -a; . .stack/test/env; set +a; \
	  $(call fuzz_all,$(FUZZTIME),$(FUZZTIME),$(FUZZTIME),$(FUZZTIME),$(FUZZTIME),$(FUZZTIME))

# Compression benchmark: corpus from Debian wallpaper packages, sharp from
# npm into .bench/node (throwaway), both paths on the same files, one core.
# Every figure lands in one results file, $(BENCH_RESULTS), which the
# READMEs link to; .bench/ keeps the per-file figures.
BENCH_RESULTS := functions/cmd/imgbench/RESULTS.md
bench:
	@go build -o $(BIN)/imgbench ./functions/cmd/imgbench
	@mkdir -p .bench && rm -f .bench/compress.md .bench/resize.md .bench/go-bench.txt .bench/pipeline.txt
	@functions/cmd/imgbench/corpus.sh .bench $(BIN)/imgbench
	@if [ ! -d .bench/node/node_modules/sharp ]; then mkdir -p .bench/node && cd .bench/node \
	  && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error sharp@$(SHARP_VERSION) >/dev/null; fi
	@rm -rf .bench/sharp-out && mkdir -p .bench/sharp-out
	@echo "sharp $(SHARP_VERSION): compressing the corpus"
	@cp functions/cmd/imgbench/sharp.mjs .bench/node/ && cd .bench/node && UV_THREADPOOL_SIZE=1 node sharp.mjs ../corpus ../sharp-out $(BENCH_REPS) > ../sharp.json
	@$(BIN)/imgbench -corpus .bench/corpus -sharp .bench/sharp.json -sharp-out .bench/sharp-out -reps $(BENCH_REPS) 2> .bench/files.txt | tee .bench/compress.md
	@echo "(per-file figures: .bench/files.txt)"
	@rm -rf .bench/sharp-resize-out && mkdir -p .bench/sharp-resize-out
	@echo "sharp $(SHARP_VERSION): resizing the corpus"
	@cp functions/cmd/imgbench/sharp-resize.mjs .bench/node/ && cd .bench/node && UV_THREADPOOL_SIZE=1 node sharp-resize.mjs ../corpus ../sharp-resize-out $(BENCH_REPS) > ../sharp-resize.json
	@$(BIN)/imgbench -resize -corpus .bench/corpus -sharp .bench/sharp-resize.json -sharp-out .bench/sharp-resize-out -reps $(BENCH_REPS) 2> .bench/resize-files.txt | tee .bench/resize.md
	@echo "(per-file figures: .bench/resize-files.txt)"
	@set -o pipefail; IMGPIPE_BENCH_CORPUS=$(CURDIR)/.bench/corpus go test -run='^$$' -bench=. -benchmem ./shared/jpegdct ./shared/imagework \
	  | tee .bench/go-bench.txt
	@$(MAKE) --no-print-directory bench-pipeline
	@$(BIN)/imgbench -results $(BENCH_RESULTS) -from .bench -sharp-version $(SHARP_VERSION) && echo "results: $(BENCH_RESULTS)"

# End to end on its own emulators: 1,000 images of a median-size corpus
# photograph through a function host process of its own (its CPU outside
# compression, by its own profile; Firestore operations, messages and object
# writes per image; images/s, bound by the Pub/Sub emulator), and uploads of
# 1k/10k/100k rows (time, peak RSS of a fresh host process).
bench-pipeline: tools
	@$(STACK) up $(STACK_FLAGS) -dir .stack/bench $(BENCH_PORTS) >/dev/null || exit 1; \
	  trap '$(STACK) down $(STACK_FLAGS) -dir .stack/bench >/dev/null' EXIT; \
	  set -a; . .stack/bench/env; set +a; \
	  img=$$(ls -S $(CURDIR)/.bench/corpus/*.jpg 2>/dev/null | awk '{a[NR]=$$0} END {if (NR) print a[int((NR+1)/2)]}'); \
	  echo "pipeline benchmark image: $${img:-testdata/images/coffee.jpg}"; \
	  set -o pipefail; mkdir -p .bench; IMGPIPE_BENCH_IMAGE=$$img IMGPIPE_REQUIRE_EMULATORS=1 go test -run='^$$' -bench='Pipeline1000|Upload' -benchtime=1x -timeout=30m ./functions \
	  | tee .bench/pipeline.txt | grep -E '^(Benchmark|ok|FAIL|---)'

# Load test: LOAD_IMAGES images of mixed kinds through a function host
# process on its own emulators, one request; prints images/s, CPU per image
# and where each image's time went (terraform/README.md, Capacity).
LOAD_IMAGES ?= 20000
load: tools
	@$(STACK) up $(STACK_FLAGS) -dir .stack/bench $(BENCH_PORTS) >/dev/null || exit 1; \
	  trap '$(STACK) down $(STACK_FLAGS) -dir .stack/bench >/dev/null' EXIT; \
	  set -a; . .stack/bench/env; set +a; \
	  set -o pipefail; IMGPIPE_LOAD_IMAGES=$(LOAD_IMAGES) IMGPIPE_REQUIRE_EMULATORS=1 go test -run='^$$' -bench='^BenchmarkLoad$$' -benchtime=1x -timeout=90m ./functions \
	  | grep -vE '^(goos|goarch|pkg|cpu|PASS|Serving function)'

# Only the fault-injection suite (make test runs it too), on its own emulators.
faults: tools
	@$(STACK) up $(STACK_FLAGS) -dir .stack/test $(TEST_PORTS) >/dev/null || exit 1; \
	  trap '$(STACK) down $(STACK_FLAGS) -dir .stack/test' EXIT; \
	  set -a; . .stack/test/env; set +a; \
	  set -o pipefail; IMGPIPE_REQUIRE_EMULATORS=1 go test -count=1 -tags faults -run 'TestFault' -v ./functions 2>&1 | grep -E '^(---|ok|FAIL|PASS)|faults_test|hostkill_test'

clean: emulators-down
	rm -rf $(BIN) .stack
