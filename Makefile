# tokamak: `make demo` and `make test` do all set-up on a fresh machine (see README).
BUILD ?= build
JOBS ?= $(shell nproc)
DEMO_MODEL ?= $(firstword $(wildcard models/demo) tests/data/golden/llama_gqa)
DEMO_PROMPT ?= def fibonacci(n):

.PHONY: all deps configure build test demo clean

all: build

deps:
	@bash scripts/setup.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@./$(BUILD)/tokamak generate --model $(DEMO_MODEL) --prompt "$(DEMO_PROMPT)" --max-tokens 64 --device auto

clean:
	rm -rf $(BUILD)
