# Corral's one-word targets. `make run` and `make test` do all set-up on a fresh Debian 12.
SHELL := /bin/bash
.DEFAULT_GOAL := run

JOBS ?= $(shell nproc)
export CORRAL_ENGINE_DIR := $(shell scripts/engine.sh --print)
CORRAL := build/release/bin/corral
# ccache: paths relative to the checkout, so another clone (CI) reuses the object files.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true

.PHONY: run test setup test-setup bench-setup engine llama-ui build build-bin build-asan build-tsan build-fuzz models fuzz format format-check tidy tidy-changed bench clean help

help:
	@echo "make run    - set up, build, make the default models, start Corral and stream an answer"
	@echo "make test   - set up, build (release + asan-ubsan + fuzz), run every test through ctest"
	@echo "make llama-ui - build the pinned llama.cpp web UI (npm), served by Corral at /llama/"
	@echo "make format | format-check | tidy | tidy-changed | bench | clean"

setup:
	@scripts/setup.sh

# Only `make bench` needs these (nginx, the reference proxy of suite C); run/test do not.
bench-setup: setup
	@scripts/setup.sh deps/bench-packages.txt

# Only `make test` needs these (tmux, headless Chromium for the dashboards' tests).
test-setup: setup
	@scripts/setup.sh deps/test-packages.txt

engine: setup
	@scripts/engine.sh >/dev/null

# The pinned engine's own web UI (its tools/ui, npm ci + vite build, cached per lockfile and
# source: a few minutes once, nothing afterwards). Corral serves it at /llama/ (docs/proxy.md).
# `make test` builds it (its browser test); `make run` does not, to stay quick.
llama-ui: engine
	@scripts/llama-ui.sh >/dev/null

# Configure once per preset (again when the engine directory or the presets change), then build.
define configure
	@if ! grep -qs "CORRAL_ENGINE_DIR:PATH=$(CORRAL_ENGINE_DIR)$$" build/$(1)/CMakeCache.txt || \
	    [ CMakePresets.json -nt build/$(1)/CMakeCache.txt ]; then \
	  cmake --preset $(1) >build/$(1).configure.log 2>&1 || { cat build/$(1).configure.log; exit 1; }; fi
endef

build: engine
	@mkdir -p build
	$(call configure,release)
	@cmake --build --preset release -j $(JOBS)

# Just the binary: what `make run` needs (the tests and benchmarks are for `make test`).
build-bin: engine
	@mkdir -p build
	$(call configure,release)
	@cmake --build --preset release -j $(JOBS) --target corral

build-asan: engine
	@mkdir -p build
	$(call configure,asan-ubsan)
	@cmake --build --preset asan-ubsan -j $(JOBS) --target corral corral_unit_tests

build-tsan: engine
	@mkdir -p build
	$(call configure,tsan)
	@cmake --build --preset tsan -j $(JOBS) --target corral corral_tsan_tests

build-fuzz: engine
	@mkdir -p build
	$(call configure,fuzz)
	@cmake --build --preset fuzz -j $(JOBS) --target corral_fuzzers

models: build-bin
	@scripts/default-models.sh $(CORRAL)

run: models
	@scripts/demo.sh $(CORRAL)

# Sanitizer and fuzz runs first; the release ctest run (unit + integration) last, so its
# summary ends the output.
test: test-setup llama-ui build build-asan build-tsan build-fuzz
	@scripts/fuzz-smoke.sh build/fuzz
	@ctest --preset asan-ubsan -j $(JOBS) -L 'unit|asan' --no-tests=error
	@if ctest --preset tsan -N -L tsan | grep -q 'Total Tests: [1-9]'; then ctest --preset tsan -j $(JOBS) -L tsan; fi
	@ctest --preset release -j $(JOBS) --no-tests=error

fuzz: build-fuzz
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-60} scripts/fuzz-smoke.sh build/fuzz

bench: models bench-setup
	@$(CORRAL) bench --out bench/results

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror

tidy: build-asan
	@git ls-files 'src/*.cc' | xargs clang-tidy -p build/asan-ubsan --quiet

# A ratchet for CI: clang-tidy on every src/*.cc changed since the commit in .ci/tidy-base
# (a whole-tree run takes ~40 CPU-minutes here; a change's files take a few). Move the base
# forward after a clean whole-tree `make tidy`.
TIDY_BASE ?= $(shell cat .ci/tidy-base 2>/dev/null)
tidy-changed: build-asan
	@files=$$(git diff --name-only --diff-filter=AM $(TIDY_BASE) -- 'src/*.cc'); \
	  if [ -z "$$files" ]; then echo "tidy: no src/*.cc changed since $(TIDY_BASE)"; exit 0; fi; \
	  echo "tidy: $$(echo $$files | wc -w) file(s) changed since $(TIDY_BASE)"; \
	  echo $$files | tr ' ' '\n' | xargs -P $(JOBS) -n 1 clang-tidy -p build/asan-ubsan --quiet

clean:
	rm -rf build
