# Convenience targets around CMake. See README.md.
#   make run    install build deps, build, start the API server with the example workflows
#   make test   install test deps, build with ASan+UBSan, run every test (unit, e2e, fuzz replay)
#   make bench  run the benchmarks in bench/
#   make install  install the binary, man pages, completions and systemd units (PREFIX, DESTDIR)
#   make deb    build the Debian package (dpkg-deb) in $(DEB_OUT)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= 2
ORCH = $(BUILD)/src/cli/orch
DEMO_DIR ?= .orch-demo

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
# Debian 12 keeps units in /lib/systemd/system; elsewhere under the prefix (systemd reads
# /usr/local/lib/systemd/system too).
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
DEB_OUT ?= $(BUILD)

.PHONY: all deps build run test test-release test-asan test-fuzz bench clean format install \
	install-files uninstall deb

all: build

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DASAN=OFF -DUBSAN=OFF >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@echo "==> orch server --data-dir $(DEMO_DIR) --register examples  (foreground; Ctrl-C stops it)"
	@echo "==> web UI: http://$(or $(ORCH_LISTEN),127.0.0.1:8080)/  (sign in with the key below)"
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

# The binary of $(BUILD) (built first if missing), or ORCH=path.
install: $(if $(wildcard $(ORCH)),,build)
	@$(MAKE) -s install-files

install-files:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(UNITDIR)
	install -m 0755 $(ORCH) $(DESTDIR)$(BINDIR)/orch
	install -m 0644 docs/man/orch.1 $(DESTDIR)$(MANDIR)/man1/orch.1
	install -m 0644 docs/man/orch-workflow.5 $(DESTDIR)$(MANDIR)/man5/orch-workflow.5
	install -m 0644 dist/completions/orch.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/orch
	install -m 0644 dist/completions/_orch $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_orch
	install -m 0644 dist/completions/orch.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/orch.fish
	for u in orch-server orch-worker; do \
	  sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/$$u.service > $(DESTDIR)$(UNITDIR)/$$u.service && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/orch $(DESTDIR)$(MANDIR)/man1/orch.1 \
	  $(DESTDIR)$(MANDIR)/man5/orch-workflow.5 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/orch \
	  $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_orch \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/orch.fish \
	  $(DESTDIR)$(UNITDIR)/orch-server.service $(DESTDIR)$(UNITDIR)/orch-worker.service

# The Debian package of the binary of $(BUILD) (built first if missing), or ORCH=path.
deb: $(if $(wildcard $(ORCH)),,build)
	@scripts/make-deb.sh $(ORCH) $(DEB_OUT)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')
