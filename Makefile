# Cove — the two commands: `make run` and `make test` (as root, on Debian 12).
# Everything else here serves them. The build itself is Meson + Ninja (build/).

BUILD      ?= build
DATA_DIR   ?= /var/lib/cove
LISTEN     ?= 127.0.0.1:49982
PYTHON     ?= /usr/bin/python3
# make install: where (meson's prefix) and into which staging root (DESTDIR, for packaging).
PREFIX     ?= /usr/local
DESTDIR    ?=

# Build tools and libraries.
BUILD_PKGS = gcc make meson ninja-build pkg-config libc6-dev \
             libmicrohttpd-dev libjansson-dev libsqlite3-dev libseccomp-dev libcap-dev \
             libssl-dev zlib1g-dev libcurl4-openssl-dev libarchive-dev \
             libnftables-dev libnftnl-dev libmnl-dev libnetfilter-conntrack-dev libldns-dev
# What the default templates contain (build-plane.md §2), taken from the host's userland.
TEMPLATE_PKGS = bash coreutils procps sudo git curl ca-certificates python3 python3-pip \
                python3-numpy python3-pandas python3-matplotlib
# What the tests drive (vim-tiny: the PTY test runs `vi`).
TEST_PKGS = tmux iproute2 util-linux vim-tiny
# The build plane's loopback registry fixture (tests/integration/registryfix.py) and bench.
TEST_PKGS += docker-registry skopeo umoci busybox-static apache2-utils zstd openssl
# nftables, conntrack, ping: what the network tests look at and send.
TEST_PKGS += nftables conntrack iputils-ping
# What the benchmarks drive.
BENCH_PKGS = wrk
# bench/httpbench.py compares with coved built from this revision: the last one whose HTTP
# server ran a thread per connection with select(). Empty: this build only.
HTTP_BASELINE ?= 509353d
# What coved needs at run time: mkfs.ext4 formats the sandboxes' disk images (runtime/disk.h).
RUNTIME_PKGS = e2fsprogs
# make fuzz (clang + libFuzzer), symbolised sanitizer reports, make format-check.
CHECK_PKGS = clang libclang-rt-14-dev llvm clang-format

.PHONY: all build deps run test unit integration security bench bench-more clean check-banned format \
        install e2b-sdk format-check fuzz check-sanitize

all: build

# Installs only what is missing (apt-get runs only then). nodejs and npm are accepted from any
# source (NodeSource's nodejs bundles npm; Debian's does not: then Debian's npm is installed).
deps:
	@missing=$$(for p in $(BUILD_PKGS) $(TEMPLATE_PKGS) $(TEST_PKGS) $(BENCH_PKGS) $(RUNTIME_PKGS) $(CHECK_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$(echo $$missing)" ]; then \
	    echo "installing:" $$missing; \
	    if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install packages" >&2; exit 1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# code-interpreter runs TypeScript with tsx (runtime.md §9), from the npm registry, in npm's
	@# global prefix; the default templates see the host's /usr only, so that prefix must be in it.
	@prefix=$$(npm prefix -g) || { echo "make deps: npm does not work" >&2; exit 1; }; \
	case "$$prefix/" in /usr/*) ;; *) echo "make deps: npm's global prefix '$$prefix' is not under /usr, which sandboxes see (npm config set prefix /usr/local)" >&2; exit 1;; esac; \
	if [ ! -x "$$prefix/bin/tsx" ]; then \
	    echo "installing tsx with npm into $$prefix"; \
	    npm install -g --no-fund --no-audit --loglevel=error tsx >/dev/null || { echo "make deps: npm install -g tsx failed" >&2; exit 1; }; \
	    [ -x "$$prefix/bin/tsx" ] || { echo "make deps: tsx is not in $$prefix/bin after npm install -g" >&2; exit 1; }; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Binaries (coved in sbin, cove-runtime/-init/-agent in libexec/cove), libcove, the systemd unit,
# coved.conf.example (copied to coved.conf when there is none: an operator's file is never
# overwritten) and the Prometheus sample. docs/operations.md walks through the rest.
# (Not through `deps`: npm reads DESTDIR from the environment and would look elsewhere.)
install: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	@if [ "$$(meson introspect $(BUILD) --buildoptions | $(PYTHON) -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')" != "$(PREFIX)" ]; then \
	    meson configure $(BUILD) -Dprefix=$(PREFIX) >/dev/null && ninja -C $(BUILD); fi
	DESTDIR="$(DESTDIR)" meson install -C $(BUILD) --no-rebuild --quiet
	@conf="$(DESTDIR)$$(meson introspect $(BUILD) --buildoptions | $(PYTHON) -c 'import json,sys,os; o={x["name"]: x["value"] for x in json.load(sys.stdin)}; print(os.path.join(o["prefix"], o["sysconfdir"], "cove"))')"; \
	    if [ ! -e "$$conf/coved.conf" ]; then install -m 0640 "$$conf/coved.conf.example" "$$conf/coved.conf"; \
	        echo "installed $$conf/coved.conf"; else echo "kept $$conf/coved.conf"; fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

run: build
	@$(BUILD)/coved --listen $(LISTEN) --data-dir $(DATA_DIR)

security: build
	$(PYTHON) tests/run.py --build $(BUILD) --only security

unit: build
	$(PYTHON) tests/run.py --build $(BUILD) --only unit

integration: build e2b-sdk
	$(E2B_PATH) $(PYTHON) tests/run.py --build $(BUILD) --only integration

# E2B's own SDKs at the versions tests/e2b/package-lock.json pins (e2b.md §7), project-local.
# They need Node.js >= 20.18.1; Debian 12's nodejs is 18, so where the host's is older, a
# Node.js 20 binary comes from the npm registry (package node-linux-<arch>) into E2B_NODE and
# the targets that run the SDKs put it first in PATH (only host-side test drivers use it).
E2B_NODE  = $(CURDIR)/tests/e2b/.node
E2B_NODE_VERSION = 20.19.5
E2B_PATH  = PATH=$(E2B_NODE)/bin:$$PATH
e2b-sdk:
	@cd tests/e2b && { [ -d node_modules/e2b ] && [ -d node_modules/@e2b/code-interpreter ] && \
	    [ node_modules/.package-lock.json -nt package-lock.json ]; } || \
	    npm ci --no-fund --no-audit --loglevel=error >/dev/null || { echo "make: npm ci in tests/e2b failed" >&2; exit 1; }
	@node -e 'const [a,b,c]=process.versions.node.split(".").map(Number); process.exit(a>=22 || (a==20 && (b>18 || (b==18 && c>=1))) ? 0 : 1)' || \
	    [ -x $(E2B_NODE)/bin/node ] || { \
	    case "$$(uname -m)" in x86_64) arch=x64;; aarch64) arch=arm64;; *) arch=$$(uname -m);; esac; \
	    echo "installing Node.js $(E2B_NODE_VERSION) for the E2B SDKs (the host's is $$(node --version))"; \
	    npm install --prefix $(E2B_NODE)/pkg --no-fund --no-audit --loglevel=error \
	        node-linux-$$arch@$(E2B_NODE_VERSION) >/dev/null && mkdir -p $(E2B_NODE)/bin && \
	    ln -sf ../pkg/node_modules/node-linux-$$arch/bin/node $(E2B_NODE)/bin/node && \
	    $(E2B_NODE)/bin/node --version >/dev/null; } || { echo "make: no Node.js >= 20.18.1 for the E2B SDKs" >&2; exit 1; }

test: build e2b-sdk
	$(E2B_PATH) $(PYTHON) tests/run.py --build $(BUILD)

# Sanitizers: coved, cove-runtime, libcove, cove and the tests with ASan+UBSan (build-san/;
# cove-init and cove-agent stay static and unsanitized), then the whole suite against them.
# A sanitizer report of any process fails the test module it happened in.
SAN_BUILD ?= build-san

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) -Dsanitize=address,undefined >/dev/null

check-sanitize: deps e2b-sdk $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)
	rm -rf $(SAN_BUILD)/sanitizer-reports
	$(E2B_PATH) $(PYTHON) tests/run.py --build $(SAN_BUILD) --sanitizers $(SAN_BUILD)/sanitizer-reports

# libFuzzer: every harness of tests/fuzz/ for FUZZ_SECONDS each (FUZZ=name for one), in
# build-fuzz/ (clang). New corpus entries stay in build-fuzz/fuzz-corpus/ (not in git).
FUZZ_SECONDS ?= 60
FUZZ ?=

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh $(FUZZ)

# Issue 10's table: every row next to its reference measured in the same run (bench/report.py
# runs bench/io.py, the create-side scripts and bench/scale.py, and prints one table).
bench: build
	$(PYTHON) bench/report.py --build $(BUILD)

# The other benchmarks: the kernel floor alone, E2B SDK, build plane, network, HTTP server
# against a baseline revision.
bench-more: build e2b-sdk
	$(BUILD)/bench/bench-floor 200
	$(E2B_PATH) $(PYTHON) bench/e2b.py --build $(BUILD) --count 100
	$(PYTHON) bench/build.py --build $(BUILD)
	$(PYTHON) bench/network.py --build $(BUILD) --count 100
	$(PYTHON) bench/httpbench.py --build $(BUILD) $(if $(HTTP_BASELINE),--baseline $(HTTP_BASELINE))

check-banned:
	tools/check-banned.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	tools/check-format.sh

clean:
	rm -rf $(BUILD) $(SAN_BUILD) build-fuzz
