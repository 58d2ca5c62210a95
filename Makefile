# Keep — build, test, bench.  `make test` and `make run` do everything on a
# fresh machine: missing tools (re2c, lemon, libedit-dev, lua5.4 for bench)
# are installed with apt-get when we can (root or passwordless sudo).

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -std=c11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE
GENWARN  = -std=c11 -D_GNU_SOURCE -Wno-unused-variable -Wno-unused-parameter
B       ?= build
LDLIBS   = -lm -lpthread

LIB_SRC  = $(wildcard alloc/*.c lexer/*.c parser/*.c compiler/*.c vm/*.c stdlib/*.c)
GEN_SRC  = $(B)/gen/lexer.c $(B)/gen/grammar.c
LIB_OBJ  = $(LIB_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/lexer.o $(B)/obj/gen/grammar.o
CLI_SRC  = $(wildcard cli/*.c)
CLI_OBJ  = $(CLI_SRC:%.c=$(B)/obj/%.o)
CTEST_SRC = $(wildcard tests/c/test_*.c)
CTEST_BIN = $(CTEST_SRC:tests/c/%.c=$(B)/tests/%)

.PHONY: all test test-asan test-debug run bench clean tools
all: tools $(B)/keep $(B)/libkeep.a $(CTEST_BIN)

# ------------------------------------------------------------------ tools
NEED_PKGS = $(if $(shell command -v re2c),,re2c) $(if $(shell command -v lemon),,lemon) \
            $(if $(wildcard /usr/include/histedit.h),,libedit-dev)
tools:
	@pkgs="$(strip $(NEED_PKGS))"; if [ -n "$$pkgs" ]; then sh .ci/install-tools $$pkgs; fi

# ------------------------------------------------------------- generated
$(B)/gen/lexer.c: lexer/lexer.re | tools
	@mkdir -p $(dir $@)
	re2c -W --no-generation-date -o $@ $<

$(B)/gen/grammar.c: parser/grammar.y | tools
	@mkdir -p $(dir $@)
	cp parser/grammar.y $(B)/gen/grammar.y
	lemon -q -T/usr/share/lemon/lempar.c -d$(B)/gen $(B)/gen/grammar.y

$(B)/obj/gen/%.o: $(B)/gen/%.c $(B)/gen/grammar.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(GENWARN) -I. -I$(B)/gen -Ilexer -Iparser -c $< -o $@

# ----------------------------------------------------------------- ours
$(B)/obj/%.o: %.c $(B)/gen/grammar.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -MMD -MP -I. -I$(B)/gen -Iinclude -c $< -o $@

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

$(B)/libkeep.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/keep: $(CLI_OBJ) $(B)/libkeep.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(B)/libkeep.a -ledit $(LDLIBS)

$(B)/tests/%: tests/c/%.c $(B)/libkeep.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -I. -Iinclude -o $@ $< $(B)/libkeep.a $(LDLIBS)

# ----------------------------------------------------------------- tests
test: all
	@sh tests/run.sh $(B)

test-asan:
	@$(MAKE) --no-print-directory B=build/asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	@ASAN_OPTIONS=detect_leaks=1 sh tests/run.sh build/asan

test-debug: all
	@KEEP_TEST_FLAGS=--debug-alloc sh tests/run.sh $(B)

run: all
	$(B)/keep examples/tour.kp

# ----------------------------------------------------------------- bench
bench: all
	@command -v lua5.4 >/dev/null || sh .ci/install-tools lua5.4
	@sh bench/run.sh $(B)/keep

clean:
	rm -rf build

# ThreadSanitizer run of the allocator thread stress test (alloc/).
test-tsan:
	@sh tests/c/tsan.sh build/tsan
