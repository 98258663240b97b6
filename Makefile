# zonegate — handwritten Makefile.  `make` builds build/zonegate.
#   make run      install run deps, build, start on conf/zonegate.conf (demo upstream inside)
#   make test     install test deps, build, run unit (cmocka) + integration tests
#   make smoke    start `make run` in the background, curl it, stop it
#   make asan     the same tests against an ASan+UBSan build (clang)
#   make fuzz / fuzz-smoke   libFuzzer targets / a bounded run of each
#   make bench    side-by-side benchmarks with nginx (bench/README.md)

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
SAN      ?=
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -pthread $(INCLUDES) -I$(LLHTTP_INC)
CFLAGS   = $(CFLAGS_BASE) -Wall -Wextra -Werror -MMD -MP $(EXTRA_CFLAGS)
LDLIBS   = -luv -lpcre2-8 -ljansson -lhiredis -lseccomp -lcrypt -lssl -lcrypto -lz -lpthread -lm
PYTHON  ?= python3
# parallel compile jobs of `make test` (its tests run as run.py shards them)
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

# the library, one folder per layer (each uses only the layers listed before it)
LAYERS   = core shm conf http stream modules process
INCLUDES = -Iinclude $(LAYERS:%=-Iinclude/%)

SRC      = $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c)) $(wildcard src/zg_*.c)
OBJ      = $(SRC:src/%.c=$(BUILD)/obj/%.o)
LLHTTP_OBJ = $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
UNIT_SRC = $(foreach l,$(LAYERS),$(wildcard tests/unit/$(l)/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test smoke unit integration asan clean fuzz fuzz-smoke bench microbench soak

all: $(BUILD)/zonegate $(UNIT_BIN)

# `run`, `test` and `bench` install their packages first and only then re-invoke make
# for the rest: make reads directories (e.g. the llhttp sources) once, so no rule may
# be looked at before the packages that provide its files exist.
deps:
	@sh scripts/deps.sh test

$(LLHTTP_DIR)/%.c:
	@echo "missing $@: install the packages first (make deps, or make run / make test)" >&2
	@exit 1

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/gen -c $< -o $@

# the dashboard's page, as the lines of a C string literal
$(BUILD)/gen/zg_dashboard.inc: src/modules/zg_dashboard.html
	@mkdir -p $(dir $@)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@

$(BUILD)/obj/modules/zg_dashboard.o: $(BUILD)/gen/zg_dashboard.inc

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -DLLHTTP_STRICT_MODE=1 -w -c $< -o $@

$(BUILD)/libzg.a: $(OBJ) $(LLHTTP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/zonegate: $(BUILD)/obj/main.o $(BUILD)/libzg.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libzg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libzg.a -lcmocka $(LDLIBS)

RUN_CMD = $(BUILD)/zonegate -c conf/zonegate.conf

run:
	@sh scripts/deps.sh run
	@$(MAKE) --no-print-directory $(BUILD)/zonegate
	@echo "zonegate on conf/zonegate.conf — try: curl -i http://127.0.0.1:8080/"
	exec $(RUN_CMD)

smoke:
	@sh scripts/smoke.sh

unit: all
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

integration: all
	ZG_BIN=$(BUILD)/zonegate $(PYTHON) tests/integration/run.py

test:
	@sh scripts/deps.sh test
	$(MAKE) -j$(JOBS) all
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) asan
	$(MAKE) fuzz-smoke FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

ASAN_VARS = BUILD=build-asan CC=clang OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    EXTRA_CFLAGS=-DZG_DEBUG ZG_ASAN=1

asan:
	$(MAKE) $(ASAN_VARS) -j$(JOBS) all
	$(MAKE) $(ASAN_VARS) unit integration

FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 20
# make test's bounded run per target (it must stay under ten minutes with all targets)
TEST_FUZZ_SECONDS ?= 6

fuzz:
	$(MAKE) -j$(JOBS) BUILD=build-fuzz CC=clang OPT=-O1 \
	    SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS=-DZG_DEBUG build-fuzz/libzg.a fuzz-bins

fuzz-bins: $(FUZZ_BIN)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libzg.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libzg.a $(LDLIBS)

fuzz-smoke: fuzz
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  mkdir -p build-fuzz/corpus-$$n; \
	  dict=""; [ -f tests/fuzz/$$n.dict ] && dict="-dict=tests/fuzz/$$n.dict"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
	      build-fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

microbench: $(BUILD)/libzg.a
	$(CC) $(CFLAGS) -o $(BUILD)/microbench bench/microbench.c $(BUILD)/libzg.a $(LDLIBS)
	$(BUILD)/microbench

SOAK_SECONDS ?= 300
soak:
	$(MAKE) BUILD=build-asan CC=clang OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    EXTRA_CFLAGS=-DZG_DEBUG build-asan/zonegate
	ZG_BIN=build-asan/zonegate SOAK_SECONDS=$(SOAK_SECONDS) $(PYTHON) tests/soak/soak.py

bench:
	@sh scripts/deps.sh bench
	$(MAKE) all
	sh bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/*/*.d $(BUILD)/tests/*/*.d)
