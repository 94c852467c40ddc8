# The two commands of README.md:
#   make run   installs what is missing, builds, starts the broker on 0.0.0.0:1883
#   make test  installs what is missing, builds, runs every test (unit + integration)
.PHONY: deps build run test asan-test fuzz-smoke bench clean

JOBS ?= $(shell nproc)
CONF ?= etc/harbormq.conf

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

run: build
	build/harbormq start --conf $(CONF)

test: build
	ctest --preset release -j $(JOBS)

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

clean:
	rm -rf build build-debug build-asan build-tsan build-fuzz
