# The two commands of the README. Both install what is missing first (Debian packages, and for
# tests a cached virtual environment of reference peers), so a fresh Debian 12 machine needs
# nothing else.
BUILD     ?= build
ASAN      ?= build-asan
FUZZ      ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build run test test-fast test-sanitize test-fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job: an MLP trained on Fashion-MNIST (Debian's dataset-fashion-mnist) on the CPU,
# about 30 s on two cores; prints the test accuracy and saves the run in runs/.
run: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target anvil_cli
	@$(BUILD)/anvil train --model mlp --epochs 20 --scheduler cosine --output runs/fashion-mnist-mlp

# Every test (CUDA-labelled ones report skipped without a GPU), then the CPU tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the file readers under libFuzzer.
test: test-fast test-sanitize test-fuzz

test-fast: deps
	@py=$$(scripts/test-venv.sh) && \
	  cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DANVIL_PYTHON=$$py $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-sanitize: deps
	@py=$$(scripts/test-venv.sh) && \
	  cmake -S . -B $(ASAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANVIL_SANITIZE=ON \
	    -DANVIL_CUDA=OFF -DANVIL_PYTHON=$$py >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)
	@cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -L cpu

# The safetensors and checkpoint readers under libFuzzer + ASan + UBSan, FUZZ_SECONDS per
# target (fuzz/README.md). Builds only what the readers need, with clang: about a minute.
test-fuzz: deps
	@cmake -S . -B $(FUZZ) -G Ninja -DANVIL_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
	@cmake --build $(FUZZ) -j $(JOBS)
	@fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
