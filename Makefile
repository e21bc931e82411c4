# egresslab: make demo | make test | make bench | make lint | make build
#            make install [PREFIX=/usr/local] | make release [VERSION=v0.1.0] | make release-check
# Every target installs what it needs on a Debian/Ubuntu machine (as root),
# saying so; elsewhere it says what is missing.

SHELL   := /bin/bash
GO      ?= go
BIN     := bin/egresslab
GINKGO  := $(GO) tool ginkgo
# command:package pairs the lab and the tests need
NEEDS   := iptables-nft-restore:iptables iptables-legacy-restore:iptables nft:nftables \
           ip:iproute2 nsenter:util-linux setpriv:util-linux telnet:telnet \
           swaks:swaks curl:curl nc:netcat-openbsd \
           ipset:ipset sysctl:procps newuidmap:uidmap dig:bind9-dnsutils
# and python3-junitparser: the specs read --junit files with it, a real JUnit consumer

# each fuzz target as package:target; make test runs each for FUZZTIME. A
# count of executions, not a duration: go1.26's fuzzing coordinator can fail
# a duration's last instant with "context deadline exceeded" on a loaded
# machine, no input at fault (golang/go#75804, fixed in go1.27).
FUZZ     := ./scenarios/policy/:FuzzLoad ./scenarios/policy/:FuzzPort ./scenarios/policy/:FuzzAddress ./netns/ruleset/:FuzzToolErrors
FUZZTIME ?= 5000x
SOAK_RUNS ?= 50

PREFIX  ?= /usr/local
# VERSION is stamped into `egresslab version` by make release: the tag at
# HEAD when there is one (git describe), else a snapshot of the commit.
VERSION ?= $(shell git describe --tags --exact-match --match 'v*' 2>/dev/null || echo v0.0.0-snapshot-$$(git rev-parse --short=12 HEAD))
DIST    ?= dist
GORELEASER ?= goreleaser
RELEASE_PLATFORMS := linux/amd64 linux/arm64

.PHONY: all build demo test fuzz soak bench bench-go lint deps install release release-check
all: build

# -buildvcs=auto stamps the commit (`egresslab version`) in a git checkout,
# whatever GOFLAGS says; a linked git worktree is not stamped (golang/go#58218).
build:
	$(GO) build -trimpath -buildvcs=auto -o $(BIN) ./cmd/egresslab

demo: deps build
	./$(BIN) repro

test: deps
	$(GO) vet ./...
	$(GINKGO) -r $(if $(CI),--no-color) --label-filter='!soak' --randomize-all --fail-on-pending --fail-on-empty --keep-going --timeout=20m --poll-progress-after=60s ./...
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory release-check

# install puts bin/egresslab in $(PREFIX)/bin (DESTDIR for packagers).
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/egresslab

# release builds what a GitHub release holds, as .goreleaser.yaml describes
# it, with go, tar and sha256sum alone: $(DIST)/egresslab_X.Y.Z_linux_ARCH.tar.gz
# (the binary, README.md, docs/*.md; VERSION stamped into `egresslab version`)
# and $(DIST)/checksums.txt. Archives are reproducible: files are owned by
# root and dated at the commit.
release:
	@set -e; rm -rf $(DIST); mkdir -p $(DIST); \
	when=$$(git log -1 --format=%ct); \
	for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=egresslab_$(VERSION:v%=%)_$${os}_$${arch}; \
	  mkdir -p $(DIST)/$$name/docs; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=auto \
	    -ldflags "-s -w -X main.version=$(VERSION)" -o $(DIST)/$$name/egresslab ./cmd/egresslab; \
	  cp README.md $(DIST)/$$name/; cp docs/*.md $(DIST)/$$name/docs/; \
	  tar -C $(DIST) --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$$when -cf - $$name | gzip -n >$(DIST)/$$name.tar.gz; \
	  rm -rf $(DIST)/$$name; \
	done; \
	cd $(DIST) && sha256sum egresslab_*.tar.gz >checksums.txt && cat checksums.txt

# release-check builds a snapshot release and checks it as a user would: the
# checksums verify, the amd64 binary says its version, make install installs
# it; then .goreleaser.yaml is checked and built with goreleaser where it is
# installed (it is not a dependency of this module: see README).
release-check:
	@set -e; snap=v0.0.0-snapshot-$$(git rev-parse --short=12 HEAD); tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(MAKE) --no-print-directory release VERSION=$$snap DIST=$$tmp/dist >/dev/null; \
	(cd $$tmp/dist && sha256sum --quiet -c checksums.txt); \
	tar -C $$tmp -xzf $$tmp/dist/egresslab_$${snap#v}_linux_$$($(GO) env GOARCH).tar.gz; \
	got=$$($$tmp/egresslab_$${snap#v}_linux_$$($(GO) env GOARCH)/egresslab version); \
	case "$$got" in "egresslab $$snap ("*) ;; *) echo "release-check: egresslab version said '$$got', want $$snap"; exit 1;; esac; \
	$(MAKE) --no-print-directory install PREFIX=$$tmp/prefix >/dev/null; $$tmp/prefix/bin/egresslab version >/dev/null; \
	echo "release-check: $$(ls $$tmp/dist | tr '\n' ' ')verified; $$got"
	@if command -v $(GORELEASER) >/dev/null 2>&1; then \
	  $(GORELEASER) check && $(GORELEASER) release --snapshot --clean --skip=publish >/dev/null && \
	  echo "release-check: .goreleaser.yaml checked and built: $$(cd dist && ls *.tar.gz | tr '\n' ' ')"; \
	else \
	  echo "release-check: goreleaser is not installed here: .goreleaser.yaml NOT checked (make release built the same archives)"; \
	fi

# fuzz explores each fuzz target briefly (go test already ran their seeds).
fuzz:
	@for t in $(FUZZ); do \
	  echo "fuzz $${t##*:}: $(FUZZTIME)"; \
	  $(GO) test -list "^$${t##*:}\$$" $${t%%:*} | grep -qx "$${t##*:}" || \
	    { echo "fuzz target $${t##*:} is not in $${t%%:*}"; exit 1; }; \
	  $(GO) test -run '^$$' -fuzz "^$${t##*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*} || exit 1; \
	done

# soak runs every example and catalogue variant SOAK_RUNS times under a CPU
# hog and counts verdict flips; runs `egresslab repro NAME` (real telnet
# included) of every catalogue entry SOAK_RUNS times under a CPU hog on both
# cores and counts the runs that did not exit 0; and runs the determinism
# regimes over every catalogue variant and testdata policy SOAK_RUNS/10 times.
# On its own, not part of test: SOAK_RUNS=50 takes about 85 minutes here.
soak: deps
	set -o pipefail; SOAK_RUNS=$(SOAK_RUNS) $(GINKGO) $(if $(CI),--no-color) --label-filter=soak --timeout=3h -v ./suites | grep -E '^ *(FLIP|examples/|catalogue/|repro/|total:)|Passed|Failed|FAIL'

# bench prints issue 12's figures against their targets (floor.sh, repro and a
# 20-probe verify as ratios to it, the 1,000-probe matrix, the 131,070-probe
# sweep, naive.sh, peak RSS); bench-go runs the in-process Go benchmarks.
bench: deps build
	bash testdata/bench/compare.sh

bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem ./scenarios/

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# deps installs the Debian packages behind any missing command.
deps:
	@missing=""; \
	for pair in $(NEEDS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	/usr/bin/python3 -c 'import junitparser' 2>/dev/null || missing="$$missing python3-junitparser"; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$${missing// /}" ]; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "egresslab needs these packages (Debian names):$$missing"; \
	    echo "install them as root (apt-get install$$missing), then run make again"; exit 3; \
	  fi; \
	  echo "installing missing packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ "$$(id -u)" = 0 ] || { echo "egresslab's labs need root: run make as root (sudo make ...)"; exit 3; }
