# odp — open government data platform. `make help` lists the targets.

SERVICES := registrar reviewer publisher query metrics
TOOLS    := odpctl odp-events odp-push odp-user
PKGS     := libczmq libzmq msgpack libpq libsodium jansson libmicrohttpd libcurl

# Debian packages for build, tests and the embedded demo (make deps).
DEB_PACKAGES := build-essential pkg-config libczmq-dev libzmq3-dev libmsgpack-dev libpq-dev \
                libsodium-dev libjansson-dev libcsv-dev libcmocka-dev postgresql \
                postgresql-client clang-format docker-compose procps \
                libmicrohttpd-dev libcurl4-openssl-dev zlib1g-dev prometheus \
                chromium fonts-noto-cjk

BUILD   ?= build
CC      ?= gcc
OPT     ?= -O2 -g
SAN     ?=
# pkg-config is asked when a recipe first needs the flags, not when this file is read:
# `make deps run` installs the libraries (and pkg-config) before anything compiles.
# Each is asked once (the eval replaces the variable by its value).
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $$(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $$(PKGS) 2>/dev/null))$(PKG_LIBS)
CFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 $(OPT) $(SAN) \
           -I. $(PKG_CFLAGS)
LDLIBS  = $(PKG_LIBS) -lcsv -lm
LDFLAGS := $(SAN)

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
LIB        := $(BUILD)/libodp.a

BINS := $(SERVICES:%=$(BUILD)/bin/odp-%) $(TOOLS:%=$(BUILD)/bin/%)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c)) $(BUILD)/tests/itest
# The sample datasets the tests push (tests/fixtures/gen.c and the dictionaries beside it).
SAMPLES   := $(BUILD)/samples

.SECONDARY:
.PHONY: all deps test asan bench up down run clean format help check-format newcomer psql fuzz \
        bins compose-test
all: $(BINS) $(TEST_BINS) $(SAMPLES)/.made
# The service and tool binaries only (what the odp image needs).
bins: $(BINS)

help:
	@echo "make deps    install Debian build/test dependencies (apt-get, idempotent)"
	@echo "make         build services, tools and tests into $(BUILD)/"
	@echo "make run     start PostgreSQL + five services under var/, then a short demo"
	@echo "make up/down start/stop the local platform (endpoints in var/odp.env)"
	@echo "make psql    psql on the local platform's database, as its superuser"
	@echo "make test    unit + integration tests against a throw-away PostgreSQL"
	@echo "make asan    the same tests built with AddressSanitizer + UBSan"
	@echo "make format  clang-format every C file"
	@echo "make compose-test  build the images, run the platform on docker-compose, test it"
	@echo "make newcomer  the README's commands in a bare Debian 12 container (needs Docker)"
	@echo "make fuzz    libFuzzer targets, FUZZ_SECONDS (600) each; installs clang if needed"

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

# Each service: its own sources, its migrations compiled in, the common library. The
# migrations directory is a prerequisite too: its time changes when a file is removed or
# renamed, which the remaining files' times do not show.
define SERVICE_RULES
$(BUILD)/gen/$(1)_migrations.c: tools/embed-sql.sh services/$(1)/migrations \
                                $(wildcard services/$(1)/migrations/*.sql)
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

$(BUILD)/bin/odpctl: $(BUILD)/obj/tools/odpctl.o $(BUILD)/obj/tools/backup.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_codec: $(BUILD)/obj/tests/unit/test_codec.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_loader: $(BUILD)/obj/tests/unit/test_loader.o $(BUILD)/obj/services/registrar/loader.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_db: $(BUILD)/obj/tests/unit/test_db.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_sha256: $(BUILD)/obj/tests/unit/test_sha256.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/gen-samples: $(BUILD)/obj/tests/fixtures/gen.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

$(SAMPLES)/.made: $(BUILD)/tests/gen-samples $(wildcard tests/fixtures/*.json)
	@mkdir -p $(SAMPLES)
	$(BUILD)/tests/gen-samples $(SAMPLES)
	cp tests/fixtures/*.json $(SAMPLES)/
	@touch $@

$(BUILD)/tests/test_buf: $(BUILD)/obj/tests/unit/test_buf.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_parse: $(BUILD)/obj/tests/unit/test_parse.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_config: $(BUILD)/obj/tests/unit/test_config.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_json: $(BUILD)/obj/tests/unit/test_json.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_copybin: $(BUILD)/obj/tests/unit/test_copybin.o $(BUILD)/obj/services/registrar/copybin.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_push_counts: $(BUILD)/obj/tests/unit/test_push_counts.o $(BUILD)/obj/services/registrar/push_counts.o $(BUILD)/obj/services/registrar/copybin.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_push_checks: $(BUILD)/obj/tests/unit/test_push_checks.o $(BUILD)/obj/services/registrar/push_checks.o $(BUILD)/obj/services/registrar/push_counts.o $(BUILD)/obj/services/registrar/copybin.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_push_keys: $(BUILD)/obj/tests/unit/test_push_keys.o $(BUILD)/obj/services/registrar/push_keys.o $(BUILD)/obj/services/registrar/copybin.o $(LIB)
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

# Not part of `make test`: it builds a Debian image and takes minutes.
newcomer:
	@sh tests/newcomer.sh

# Not part of `make test` either: builds the images (minutes when none exist) and runs the
# platform on docker-compose; needs root for Docker. Uses the host's odpctl as a client.
compose-test: bins
	@sh tests/compose/run.sh
# psql as the cluster's superuser, over its socket (trust there; nothing else is).
ODP_ENV ?= var/odp.env
psql:
	@test -r $(ODP_ENV) || { echo "make psql: no $(ODP_ENV): run make up first" >&2; exit 1; }
	@. $(abspath $(ODP_ENV)) && exec "$$ODP_PG_BIN/psql" -X "$$ODP_PG_SUPERUSER_URL"

# ---- fuzzing ----------------------------------------------------------------------------
# libFuzzer targets (tests/fuzz/) built by clang with ASan + UBSan into build-fuzz/: the
# message codec, the dataset loader, the data dictionary parser. tests/fuzz/run.sh runs
# each for FUZZ_SECONDS and keeps a minimal corpus in tests/fuzz/corpus/. clang is not in
# DEB_PACKAGES (it is large); make fuzz installs it when it cannot build a fuzzer.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := codec loader dict
FUZZ_BUILD   := build-fuzz
FUZZ_DEB     := clang libfuzzer-14-dev
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -I. \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB     := $(COMMON_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_OBJ_codec  :=
FUZZ_OBJ_loader := $(FUZZ_BUILD)/obj/services/registrar/loader.o
FUZZ_OBJ_dict   := $(FUZZ_BUILD)/obj/services/registrar/rows.o \
                   $(FUZZ_BUILD)/obj/services/registrar/registry.o \
                   $(FUZZ_BUILD)/obj/services/registrar/maintenance.o

fuzz:
	@if printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' | \
	  clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(FUZZ_DEB); fi
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%) $(FUZZ_BUILD)/fuzz-seeds
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $$(FUZZ_OBJ_$$*) $(FUZZ_LIB)
	clang $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(FUZZ_BUILD)/fuzz-seeds: tests/fuzz/seeds.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan $(FUZZ_BUILD)

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

# The HTTP gateway and portal (services/web): no database, no migrations; libmicrohttpd, zlib.
WEB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/web/*.c))
$(BUILD)/bin/odp-web: $(WEB_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs libmicrohttpd zlib)
all: $(BUILD)/bin/odp-web
bins: $(BUILD)/bin/odp-web
