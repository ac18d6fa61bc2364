# parley — plain Makefile (STYLE.md: redis-like, SAN= for sanitizers).
#
#   make            build parleyd, parleyctl, the fakes and the tests
#   make deps       install missing Debian packages (idempotent, quick)
#   make test       deps + -Werror build + every test, then under ASan+UBSan,
#                   then each fuzz target briefly (scripts/test.sh)
#   make check      the same tests under ASan+UBSan (build-san/)
#   make demo       deps + build + run parleyd against the fakes
#   make bench      benchmarks → docs/benchmarks.md (numbers, never asserted)
#   make soak       parleyd against the fakes with faults and kill -9 for
#                   SOAK_SECONDS (600) → docs/soak.md; fails on a lost or
#                   duplicated message (not part of make test)
#   make install    PREFIX=/usr/local DESTDIR=
#   make format-check, make clean

PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR  ?= $(PREFIX)/lib/systemd/system

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CC       ?= cc
PKGS     := libcurl json-c libwebsockets libuv sqlite3 libsodium inih

ifeq ($(FUZZ),1)
# libFuzzer: clang, every object instrumented, the targets linked with
# -fsanitize=fuzzer (see tests/fuzz/ and scripts/fuzz.sh)
BUILD    ?= build-fuzz
CC       := clang
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined \
            -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      ?= -O1
else ifeq ($(SAN),1)
BUILD    ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT      ?= -O1
else
BUILD    ?= build
SANFLAGS :=
OPT      ?= -O2
endif

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wcast-qual -Wformat=2 -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN     += -Werror
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CPPFLAGS += -I. -D_GNU_SOURCE -DPARLEY_VERSION='"$(VERSION)"'
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 $(WARN) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(PKG_LIBS) -lm

# One module = one .c + .h; every .c in a layer folder is part of libparley,
# except the programs' mains.
MAINS    := bot/parleyd.c bot/parleyctl.c
LIB_SRC  := $(filter-out $(MAINS), \
            $(wildcard config/*.c core/*.c llm/*.c storage/*.c \
                       connectors/*.c bot/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libparley.a

# tests/fakes: a library (fake servers) plus programs named *_main.c.
FAKE_MAIN_SRC := $(wildcard tests/fakes/*_main.c)
FAKE_SRC := $(filter-out $(FAKE_MAIN_SRC),$(wildcard tests/fakes/*.c))
FAKE_OBJ := $(FAKE_SRC:%.c=$(BUILD)/%.o)
FAKE_LIB := $(BUILD)/libfakes.a
FAKE_BIN := $(FAKE_MAIN_SRC:tests/fakes/%_main.c=$(BUILD)/%)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:%.c=$(BUILD)/%)

BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:%.c=$(BUILD)/%)

# make soak: tests/bench/soak.c, a driver like the benchmarks
SOAK_BIN := $(BUILD)/tests/bench/soak
SOAK_SECONDS ?= 600
SOAK_KILL_EVERY ?= 60
SOAK_REPORT ?= docs/soak.md

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:%.c=$(BUILD)/%)
FUZZ_SECONDS ?= 60

PROGS    := $(BUILD)/parleyd $(if $(wildcard bot/parleyctl.c),$(BUILD)/parleyctl)

.PHONY: all tests deps test check demo install uninstall format format-check \
        clean run-tests bench fuzz fuzz-build soak
all: $(PROGS) $(FAKE_BIN)
tests: all $(UNIT_BIN) $(INTEG_BIN) $(BENCH_BIN) $(SOAK_BIN)

# V=1 shows the full commands
ifeq ($(V),1)
Q :=
else
Q := @
endif

# objects are kept between runs (they are "intermediate" to make otherwise)
.SECONDARY:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(FAKE_LIB): $(FAKE_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/parleyd: $(BUILD)/bot/parleyd.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/parleyctl: $(BUILD)/bot/parleyctl.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%: $(BUILD)/tests/fakes/%_main.o $(FAKE_LIB) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/integration/%: $(BUILD)/tests/integration/%.o $(FAKE_LIB) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/fuzz/%: $(BUILD)/tests/fuzz/%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(FAKE_LIB) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@sh scripts/deps.sh

run-tests: tests
	@sh tests/run.sh $(BUILD)

# CI's entry point (README): deps, -Werror build, every test, then the
# sanitizer build's tests.
test: deps
	@MAKE="$(MAKE)" sh scripts/test.sh

# Every fuzz target on its seeds and regressions, then FUZZ_SECONDS of
# fuzzing each; a crash fails the run and leaves its input in build-fuzz/.
fuzz-build: $(FUZZ_BIN)
fuzz: deps
	$(MAKE) FUZZ=1 WERROR=1 fuzz-build
	@sh scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

check:
	$(MAKE) SAN=1 WERROR=1 run-tests

# Benchmarks report numbers into docs/benchmarks.md; they never fail on time.
bench: deps
	$(MAKE) all $(BENCH_BIN)
	@sh scripts/bench.sh $(BUILD)

# Not part of make test: minutes of traffic, faults and kill -9 (docs/soak.md).
soak: deps
	$(MAKE) all $(SOAK_BIN)
	@SOAK_SECONDS=$(SOAK_SECONDS) SOAK_KILL_EVERY=$(SOAK_KILL_EVERY) \
	    SOAK_REPORT=$(SOAK_REPORT) sh scripts/soak.sh $(BUILD)

demo: deps
	$(MAKE) all
	@sh scripts/demo.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/parley
	install -m 0755 $(BUILD)/parleyd $(DESTDIR)$(SBINDIR)/parleyd
	if [ -f $(BUILD)/parleyctl ]; then \
	    install -m 0755 $(BUILD)/parleyctl $(DESTDIR)$(SBINDIR)/parleyctl; fi
	install -m 0644 examples/parley.conf \
	    $(DESTDIR)$(SYSCONFDIR)/parley/parley.conf.example
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's#/usr/sbin/parleyd#$(SBINDIR)/parleyd#g' \
	    -e 's#/etc/parley/#$(SYSCONFDIR)/parley/#g' \
	    systemd/parleyd.service >$(DESTDIR)$(UNITDIR)/parleyd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/parleyd.service
	for m in docs/man/*.[0-9]; do [ -f "$$m" ] || continue; \
	    s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/parleyd $(DESTDIR)$(SBINDIR)/parleyctl
	rm -f $(DESTDIR)$(UNITDIR)/parleyd.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/parley/parley.conf.example
	for m in docs/man/*.[0-9]; do [ -f "$$m" ] || continue; \
	    rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done

# man pages lint clean: mandoc's warnings, else groff's
.PHONY: man-check
man-check:
	@if command -v mandoc >/dev/null 2>&1; then \
	    mandoc -T lint -W warning docs/man/*.[0-9]; \
	else for m in docs/man/*.[0-9]; do \
	    groff -mdoc -w all -z $$m 2>&1 | (! grep .) || exit 1; done; fi

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run -Werror $(FORMAT_SRC)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
