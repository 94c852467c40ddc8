# The two commands of README.md are `sh scripts/install-deps.sh && make run` and
# `... && make test`: the install step brings make and the other missing packages. Targets:
#   make run      installs what is missing, builds, starts the broker (etc/harbormq.conf)
#   make test     installs what is missing (and the tests' npm packages: MQTT.js), builds,
#                 runs every test (unit + integration)
#   make install  installs the binary, the packaged config, the systemd unit and the docs
#                 under PREFIX (default /usr/local), staged under DESTDIR if set
#   make deb      builds build/harbormq_<version>_<arch>.deb (CPack)
#   make check-layers  checks the include rules between the src/ layers (DESIGN.md §2); needs
#                 only python3, builds nothing (CI runs it before make test)
.PHONY: deps build run test check-layers asan-test fuzz-smoke bench install deb clean

JOBS ?= $(shell nproc)
CONF ?= etc/harbormq.conf
PREFIX ?= /usr/local
DESTDIR ?=

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

run: build
	build/harbormq start --conf $(CONF)

test: build
	@scripts/install-test-tools.sh
	ctest --preset release -j $(JOBS)

check-layers:
	/usr/bin/python3 scripts/check-layers.py

asan-test: deps
	cmake --preset asan-ubsan
	cmake --build --preset asan-ubsan -j $(JOBS)
	ctest --preset asan-ubsan -j $(JOBS)

fuzz-smoke: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)
	scripts/fuzz-smoke.sh build-fuzz

bench: build
	/usr/bin/python3 bench/compare.py

install: build
	DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(PREFIX)"

deb: build
	cd build && cpack -G DEB

clean:
	rm -rf build build-debug build-asan build-tsan build-fuzz
