# odp — open government data platform. `make help` lists the targets.

SERVICES := registrar reviewer publisher query metrics
TOOLS    := odpctl odp-events odp-push
PKGS     := libczmq libzmq msgpack libpq libsodium jansson

# Debian packages for build, tests and the embedded demo (make deps).
DEB_PACKAGES := build-essential pkg-config libczmq-dev libzmq3-dev libmsgpack-dev libpq-dev \
                libsodium-dev libjansson-dev libcsv-dev libcmocka-dev postgresql \
                postgresql-client clang-format docker-compose procps

BUILD   ?= build
CC      ?= gcc
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 $(OPT) $(SAN) \
           -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lm
LDFLAGS := $(SAN)

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
LIB        := $(BUILD)/libodp.a

BINS := $(SERVICES:%=$(BUILD)/bin/odp-%) $(TOOLS:%=$(BUILD)/bin/%)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c)) $(BUILD)/tests/itest

.SECONDARY:
.PHONY: all deps test asan bench up down run clean format help check-format
all: $(BINS) $(TEST_BINS)

help:
	@echo "make deps    install Debian build/test dependencies (apt-get, idempotent)"
	@echo "make         build services, tools and tests into $(BUILD)/"
	@echo "make run     start PostgreSQL + five services under var/, then a short demo"
	@echo "make up/down start/stop the local platform (endpoints in var/odp.env)"
	@echo "make test    unit + integration tests against a throw-away PostgreSQL"
	@echo "make asan    the same tests built with AddressSanitizer + UBSan"
	@echo "make format  clang-format every C file"

deps:
	@if dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then echo "deps: all installed"; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEB_PACKAGES); fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Each service: its own sources, its migrations compiled in, the common library.
define SERVICE_RULES
$(BUILD)/gen/$(1)_migrations.c: tools/embed-sql.sh $(wildcard services/$(1)/migrations/*.sql)
	@mkdir -p $$(dir $$@)
	sh tools/embed-sql.sh $(1) services/$(1)/migrations > $$@

$(BUILD)/bin/odp-$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/$(1)/*.c)) \
                       $(BUILD)/obj/gen/$(1)_migrations.o $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call SERVICE_RULES,$(s))))

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_codec: $(BUILD)/obj/tests/unit/test_codec.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_loader: $(BUILD)/obj/tests/unit/test_loader.o $(BUILD)/obj/services/registrar/loader.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_sha256: $(BUILD)/obj/tests/unit/test_sha256.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_buf: $(BUILD)/obj/tests/unit/test_buf.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_parse: $(BUILD)/obj/tests/unit/test_parse.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_copybin: $(BUILD)/obj/tests/unit/test_copybin.o $(BUILD)/obj/services/registrar/copybin.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

ITEST_SRC := $(wildcard tests/integration/*.c)
$(BUILD)/tests/itest: $(ITEST_SRC:%.c=$(BUILD)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The README's test command. Starts its own PostgreSQL under var/test.
test: all
	@BUILD=$(BUILD) sh tests/run.sh

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

bench: all
	@sh tests/bench/run.sh

up: all
	@sh deploy/odp-local.sh up

down:
	@sh deploy/odp-local.sh down

run: up
	@sh deploy/demo.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
