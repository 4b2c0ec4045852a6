# Orchard's front door. `make demo` and `make test` are the two commands a newcomer needs.
.PHONY: all setup setup-arm64 build demo test test-x86 test-asan test-tsan test-arm64 test-fuzz fuzz clang clean

all: build

setup:
	@scripts/setup.sh

setup-arm64:
	@scripts/setup.sh --arm64

build: setup
	cmake --preset release >/dev/null
	cmake --build --preset release

# Runs the bundled example: a digits classifier on 360 held-out images.
demo: build
	./build/release/digits_demo examples/digits

# Every test: unit, conformance, real models and the docs example on x86-64; the same under
# AddressSanitizer + UndefinedBehaviorSanitizer and the unit tests under ThreadSanitizer (separate build
# directories; the TSan stage builds only the binaries its tests run: the unit tests and the CLI); then
# everything again on aarch64 under qemu; then each libFuzzer target for a short fixed number of executions
# (clang, x86-64 only).
test: setup-arm64
	$(MAKE) --no-print-directory test-x86 test-asan test-tsan test-arm64 test-fuzz

test-x86:
	cmake --preset release >/dev/null
	cmake --build --preset release
	ctest --test-dir build/release --output-on-failure

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan
	ctest --test-dir build/asan --output-on-failure

test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan --target orchard_tests orchard_cli
	ctest --test-dir build/tsan --output-on-failure -R unit

test-arm64:
	cmake --preset arm64 >/dev/null
	cmake --build --preset arm64
	ctest --test-dir build/arm64 --output-on-failure

# libFuzzer targets (tests/fuzz): ORCHARD_FUZZ_RUNS executions each over the committed seed corpora; any
# crash, leak, timeout or out-of-memory fails.
test-fuzz:
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz --target fuzz_targets
	ctest --test-dir build/fuzz --output-on-failure -L fuzz

# The long fuzz campaign, one target at a time (scripts/fuzz.sh; FUZZ_RUNS, FUZZ_TARGETS, FUZZ_JOBS).
fuzz: setup
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz --target fuzz_targets
	scripts/fuzz.sh

# Warning check with clang (the compiler Apple ships).
clang: setup
	cmake --preset clang >/dev/null
	cmake --build --preset clang

clean:
	rm -rf build
