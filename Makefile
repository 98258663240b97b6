# zonegate — handwritten Makefile.  `make` builds build/zonegate.
#   make run      install deps, build, start on conf/zonegate.conf (demo upstream inside)
#   make test     install deps, build, run unit (cmocka) + integration tests
#   make asan     the same tests against an ASan+UBSan build (clang)
#   make fuzz / fuzz-smoke   libFuzzer targets / a bounded run of each
#   make bench    side-by-side benchmarks with nginx (bench/README.md)

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
SAN      ?=
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -pthread -Iinclude -I$(LLHTTP_INC)
CFLAGS   = $(CFLAGS_BASE) -Wall -Wextra -Werror -MMD -MP $(EXTRA_CFLAGS)
LDLIBS   = -luv -lhiredis -lpthread -lm
PYTHON  ?= python3

SRC      = $(filter-out src/main.c,$(wildcard src/*.c))
OBJ      = $(SRC:src/%.c=$(BUILD)/obj/%.o)
LLHTTP_OBJ = $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOLS_SRC = $(wildcard tests/tools/*.c)
TOOLS_BIN = $(TOOLS_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps run test unit integration asan clean fuzz fuzz-smoke bench microbench soak

all: $(BUILD)/zonegate $(UNIT_BIN) $(TOOLS_BIN)

deps:
	@sh scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -w -c $< -o $@

$(BUILD)/libzg.a: $(OBJ) $(LLHTTP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/zonegate: $(BUILD)/obj/main.o $(BUILD)/libzg.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libzg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libzg.a -lcmocka $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libzg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libzg.a $(LDLIBS)

run: deps $(BUILD)/zonegate
	@echo "zonegate on conf/zonegate.conf — try: curl -i http://127.0.0.1:8080/"
	exec $(BUILD)/zonegate -c conf/zonegate.conf

unit: all
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

integration: all
	ZG_BIN=$(BUILD)/zonegate ZG_TOOLS=$(BUILD)/tools $(PYTHON) tests/integration/run.py

test: deps
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) asan
	$(MAKE) fuzz-smoke

asan:
	$(MAKE) BUILD=build-asan CC=clang OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    ZG_ASAN=1 unit integration

clean:
	rm -rf build build-asan build-fuzz

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d $(BUILD)/tools/*.d)
