# Keep — build, test, bench.  `make test` and `make run` do everything on a
# fresh machine: missing tools (re2c, lemon, libedit-dev, lua5.4 for bench)
# are installed with apt-get when we can (root or passwordless sudo).

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
VERSION  = 0.1.0
SOMAJOR  = 0
# library objects are position-independent (for libkeep.so) and export
# only the KP_API functions of include/keep.h
PIC      = -fPIC -fvisibility=hidden
WARN     = -std=c11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE $(PIC)
GENWARN  = -std=c11 -D_GNU_SOURCE -Wno-unused-variable -Wno-unused-parameter $(PIC)
B       ?= build
LDLIBS   = -lm -lpthread

LIB_SRC  = $(wildcard alloc/*.c lexer/*.c parser/*.c compiler/*.c vm/*.c stdlib/*.c api/*.c fmt/*.c)
GEN_SRC  = $(B)/gen/lexer.c $(B)/gen/grammar.c
LIB_OBJ  = $(LIB_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/lexer.o $(B)/obj/gen/grammar.o
CLI_SRC  = $(wildcard cli/*.c)
CLI_OBJ  = $(CLI_SRC:%.c=$(B)/obj/%.o)
CTEST_SRC = $(wildcard tests/c/test_*.c)
CTEST_BIN = $(CTEST_SRC:tests/c/%.c=$(B)/tests/%)

EMBED_SRC = $(wildcard examples/embed/*.c)
EMBED_BIN = $(EMBED_SRC:examples/embed/%.c=$(B)/embed/%)

.PHONY: all test test-asan test-debug test-tsan test-install test-oom run bench profile clean tools install fuzz fuzz-all fuzz-tools print-lib-src
all: tools $(B)/keep $(B)/libkeep.a $(B)/libkeep.so $(B)/keep.pc $(CTEST_BIN) $(EMBED_BIN)

# ------------------------------------------------------------------ tools
# Each tool is looked up once per make run; only the missing ones are
# installed, so a machine that has them never runs apt-get.
NEED_PKGS = $(if $(shell command -v re2c),,re2c) \
            $(if $(and $(shell command -v lemon),$(wildcard /usr/share/lemon/lempar.c)),,lemon) \
            $(if $(wildcard /usr/include/histedit.h),,libedit-dev) \
            $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm) \
            $(if $(shell command -v vim),,vim)
tools:
	@pkgs="$(strip $(NEED_PKGS))"; if [ -n "$$pkgs" ]; then sh .ci/install-tools $$pkgs; fi

# The editor grammar tests (tests/editors/check.sh) run the TextMate grammar
# headless with two npm packages, installed once under build/npm.
NPM_STAMP = build/npm/.installed
$(NPM_STAMP): | tools
	@mkdir -p build/npm
	cd build/npm && npm install --no-audit --no-fund --loglevel=error vscode-textmate@9.3.2 vscode-oniguruma@2.0.1
	@touch $@

# Parallel builds (-jN): every rule that writes under $(B) depends, order-only,
# on the directory it writes to; objects wait (order-only) for the generated
# parser header, and their real header dependencies come from the -MMD files,
# so a grammar edit rebuilds only what includes grammar.h.
$(B) $(B)/gen $(B)/obj/gen:
	@mkdir -p $@

# ------------------------------------------------------------- generated
$(B)/gen/lexer.c: lexer/lexer.re | tools $(B)/gen
	re2c -W --no-generation-date -o $@ $<

# lemon writes grammar.c and grammar.h in one run (grammar.h is left
# untouched when its content does not change)
$(B)/gen/grammar.h: | $(B)/gen/grammar.c
	@:
$(B)/gen/grammar.c: parser/grammar.y | tools $(B)/gen
	cp parser/grammar.y $(B)/gen/grammar.y
	lemon -q -T/usr/share/lemon/lempar.c -d$(B)/gen $(B)/gen/grammar.y

$(B)/obj/gen/%.o: $(B)/gen/%.c Makefile | $(B)/gen/grammar.h $(B)/obj/gen
	$(CC) $(CFLAGS) $(GENWARN) -MMD -MP -I. -I$(B)/gen -Ilexer -Iparser -c $< -o $@

# ----------------------------------------------------------------- ours
$(B)/obj/%.o: %.c Makefile | $(B)/gen/grammar.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -MMD -MP -I. -I$(B)/gen -Iinclude -c $< -o $@

# The dispatch loop (vm/vm.c): GCC's global CSE and cross-jumping merge the
# computed-goto jumps of the opcodes into a few shared ones (8 for 60
# opcodes), which defeats the branch predictor; CPython builds ceval.c the
# same way.  Clang keeps one jump per opcode on its own.
DISPATCH_FLAGS := $(if $(shell $(CC) --version 2>/dev/null | grep -i clang),,-fno-gcse -fno-crossjumping)
$(B)/obj/vm/vm.o: CFLAGS += $(DISPATCH_FLAGS)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

$(B)/libkeep.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libkeep.so: $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -Wl,-soname,libkeep.so.$(SOMAJOR) -o $(B)/libkeep.so.$(VERSION) $^ $(LDLIBS)
	ln -sf libkeep.so.$(VERSION) $(B)/libkeep.so.$(SOMAJOR)
	ln -sf libkeep.so.$(VERSION) $@

$(B)/keep.pc: keep.pc.in Makefile | $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' keep.pc.in > $@

$(B)/keep: $(CLI_OBJ) $(B)/libkeep.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(B)/libkeep.a -ledit $(LDLIBS)

$(B)/embed/%: examples/embed/%.c $(B)/libkeep.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Iinclude -o $@ $< $(B)/libkeep.a $(LDLIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/keep $(DESTDIR)$(PREFIX)/bin/keep
	install -m 644 $(B)/libkeep.a $(DESTDIR)$(PREFIX)/lib/libkeep.a
	install -m 755 $(B)/libkeep.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libkeep.so.$(VERSION)
	ln -sf libkeep.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libkeep.so.$(SOMAJOR)
	ln -sf libkeep.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libkeep.so
	install -m 644 include/keep.h $(DESTDIR)$(PREFIX)/include/keep.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' keep.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/keep.pc
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' keep-static.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/keep-static.pc
	install -m 644 docs/keep.1 $(DESTDIR)$(PREFIX)/share/man/man1/keep.1

$(B)/tests/%: tests/c/%.c $(B)/libkeep.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -I. -Iinclude -o $@ $< $(B)/libkeep.a $(LDLIBS)

# ----------------------------------------------------------------- tests
test: all $(NPM_STAMP)
	@sh tests/run.sh $(B)

test-asan: $(NPM_STAMP)
	@$(MAKE) --no-print-directory B=build/asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	@ASAN_OPTIONS=detect_leaks=1 sh tests/run.sh build/asan

test-debug: all $(NPM_STAMP)
	@KEEP_TEST_FLAGS=--debug-alloc sh tests/run.sh $(B)

test-install: all
	@sh tests/install.sh

run: all
	$(B)/keep examples/tour.kp

# --------------------------------------------------------------- profile
# make profile P=file.kp: where the instructions go.  perf record/report
# where perf can sample (not in every container); callgrind otherwise
# (instruction counts, load-independent: the figures to compare).
profile: all
	@test -n "$(P)" || { echo "usage: make profile P=file.kp"; exit 2; }
	@if command -v perf >/dev/null 2>&1 && perf record -q -o $(B)/perf.data $(B)/keep $(P) >/dev/null 2>$(B)/perf.err; then \
	  perf report -i $(B)/perf.data --no-children --percent-limit 1 --stdio 2>/dev/null | grep -v '^$$' | head -60; \
	elif command -v valgrind >/dev/null 2>&1; then \
	  valgrind --tool=callgrind --callgrind-out-file=$(B)/callgrind.out $(B)/keep $(P) >/dev/null && \
	  callgrind_annotate $(B)/callgrind.out | head -60; \
	else echo "profile: neither perf nor valgrind is installed"; exit 1; fi

# ----------------------------------------------------------------- bench
# The embedding benchmarks (bench/embed/) are two C hosts: one on libkeep.a,
# its twin on the system's Lua 5.4 (liblua5.4-dev, found with pkg-config).
bench: all
	@pkgs="$$(command -v lua5.4 >/dev/null || echo lua5.4) $$(pkg-config --exists lua5.4 2>/dev/null || echo liblua5.4-dev pkg-config)"; \
	  if [ -n "$$(echo $$pkgs)" ]; then sh .ci/install-tools $$pkgs; fi
	@$(MAKE) --no-print-directory $(B)/bench/embed_keep $(B)/bench/embed_lua
	@sh bench/run.sh $(B)/keep lua5.4 $(B)/bench

$(B)/bench/embed_keep: bench/embed/embed_keep.c $(B)/libkeep.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Iinclude -o $@ $< $(B)/libkeep.a $(LDLIBS)

$(B)/bench/embed_lua: bench/embed/embed_lua.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=c11 -Wall -Wextra $$(pkg-config --cflags lua5.4) -o $@ $< $$(pkg-config --libs lua5.4)

clean:
	rm -rf build

# ThreadSanitizer runs of the thread tests (tests/c/tsan.sh).
test-tsan:
	@sh tests/c/tsan.sh build/tsan

# The library's sources, one a line (for scripts that build it another way).
print-lib-src:
	@for f in $(LIB_SRC); do echo $$f; done

# Out-of-memory injection (tests/oom/oom.c): every script of the suite and
# every example, run with the Nth host allocation refused — only the Nth,
# and the Nth with every later one — for every N, on the ASan+UBSan build.
OOM_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
test-oom: tools
	@$(MAKE) --no-print-directory B=build/asan CC=clang CFLAGS="$(OOM_CFLAGS)" build/asan/libkeep.a
	clang $(OOM_CFLAGS) $(WARN) -Iinclude -o build/asan/oom tests/oom/oom.c build/asan/libkeep.a $(LDLIBS)
	@ASAN_OPTIONS=detect_leaks=1 build/asan/oom -max 5000 -skip-big \
	  $$(find tests -name '*.kp' -not -path 'tests/todo/*' | sort) examples/*.kp

# ----------------------------------------------------------------- fuzz
# libFuzzer targets (tests/fuzz/fuzz_T.c, see tests/fuzz/README.md):
#   make fuzz T=run SECONDS=60     T = run | emit | eval | api
# The library is built with ASan+UBSan and fuzzer coverage under
# build/fuzz; the dictionary comes from lexer/lexer.re, the seeds are the
# suite's scripts and the examples; the corpus grows in build/fuzz/corpus/T
# and a crashing input is saved as build/fuzz/crash-T-*.  `make fuzz-all`
# runs every target for SECONDS each (what .ci/run does).
FUZZ_TARGETS = run emit eval api
T       ?= run
SECONDS ?= 60
FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_PROBE = int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }
fuzz-tools: tools
	@if ! echo '$(FUZZ_PROBE)' | clang -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null; then \
	  sh .ci/install-tools clang libclang-rt-dev; fi

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_host.h build/fuzz/libkeep.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(WARN) -Iinclude -o $@ $< build/fuzz/libkeep.a $(LDLIBS)

build/fuzz/keep.dict: lexer/lexer.re tests/fuzz/gen_dict.sh
	@mkdir -p build/fuzz
	sh tests/fuzz/gen_dict.sh lexer/lexer.re > $@

fuzz: fuzz-tools
	@$(MAKE) --no-print-directory B=build/fuzz CC=clang CFLAGS="$(FUZZ_CFLAGS)" build/fuzz/libkeep.a
	@$(MAKE) --no-print-directory build/fuzz/fuzz_$(T) build/fuzz/keep.dict
	@sh tests/fuzz/run.sh $(T) $(SECONDS)

fuzz-all: fuzz-tools
	@$(MAKE) --no-print-directory B=build/fuzz CC=clang CFLAGS="$(FUZZ_CFLAGS)" build/fuzz/libkeep.a
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=build/fuzz/fuzz_%) build/fuzz/keep.dict
	@for t in $(FUZZ_TARGETS); do sh tests/fuzz/run.sh $$t $(SECONDS) || exit 1; done
