# The two commands of the README: `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan

.PHONY: all build deps test-deps run test unit asan clean fuzz bench

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	scripts/run.sh

# Unit + integration tests, then the same suite under ASan+UBSan (with leak checks).
test: test-deps
	scripts/test.sh $(BUILD) $(ASAN_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# libFuzzer: each harness for FUZZ_SECONDS (clang build in build-fuzz).
FUZZ_SECONDS ?= 120
fuzz: test-deps
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

# Benchmarks (not part of `make test`): prints tables with references, then
# one node versus two on PostgreSQL (bench/README.md).
bench: test-deps build
	bench/run.sh
	bench/pg.sh
