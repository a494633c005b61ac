# Convenience targets around CMake. See README.md.
#   make run    install build deps, build, start the API server with the example workflows
#   make test   install test deps, build with ASan+UBSan, run every test (unit, e2e, fuzz replay)
#   make bench  run the benchmarks in bench/
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= 2
ORCH = $(BUILD)/src/cli/orch
DEMO_DIR ?= .orch-demo

.PHONY: all deps build run test test-release test-asan test-fuzz bench clean format

all: build

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DASAN=OFF -DUBSAN=OFF >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@echo "==> orch server --data-dir $(DEMO_DIR) --register examples  (foreground; Ctrl-C stops it)"
	@echo '==> in another terminal: KEY=$$($(ORCH) keys create --name demo --scope admin --data-dir $(DEMO_DIR))'
	@echo '    curl -H "Authorization: Bearer $$KEY" http://$(or $(ORCH_LISTEN),127.0.0.1:8080)/v1/health'
	@$(ORCH) server --data-dir $(DEMO_DIR) --register examples

test: test-asan test-fuzz

test-asan:
	@scripts/install-deps.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DASAN=ON -DUBSAN=ON -DORCH_REQUIRE_TESTS=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j$(JOBS)

test-release:
	@scripts/install-deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DASAN=OFF -DUBSAN=OFF -DORCH_REQUIRE_TESTS=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-fuzz:
	@scripts/install-deps.sh test
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFUZZ=ON -DORCH_REQUIRE_TESTS=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@cd $(FUZZ_BUILD) && FUZZ_SECONDS=$${FUZZ_SECONDS:-20} ctest --output-on-failure -L fuzz

bench: build
	@scripts/install-deps.sh bench
	@bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')
