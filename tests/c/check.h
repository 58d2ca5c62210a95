/*
 * check.h — the checks of the C tests (tests/c/), in one place.
 *
 *   CHECK(cond)             counts a passed or a failed check; a failure is
 *                           reported on stderr as "file:line: test: check
 *                           failed: cond"
 *   CHECKF(cond, fmt, ...)  the same, reported with a message of its own
 *   RUN(fn)                 runs the test function fn under its name (the
 *                           "test" of the reports above)
 *   CHECK_DONE()            prints "N passed, M failed" — the line
 *                           tests/run.sh reads — and gives main's exit
 *                           status (1 if a check failed)
 *
 * The counters are atomic, so threads may check too; `check_current` is
 * the running test's name (a thread may set its own: it is thread-local).
 * Header-only (static definitions): each test program includes it once.
 */
#ifndef KP_TESTS_CHECK_H
#define KP_TESTS_CHECK_H

#include <stdatomic.h>
#include <stdio.h>

static atomic_int passed, failed;
static _Thread_local const char *check_current = "main";

#define CHECK(c)                                                                                           \
    do {                                                                                                   \
        if (c) atomic_fetch_add(&passed, 1);                                                               \
        else {                                                                                             \
            atomic_fetch_add(&failed, 1);                                                                  \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, check_current, #c);       \
        }                                                                                                  \
    } while (0)

#define CHECKF(c, ...)                                                                                     \
    do {                                                                                                   \
        if (c) atomic_fetch_add(&passed, 1);                                                               \
        else {                                                                                             \
            atomic_fetch_add(&failed, 1);                                                                  \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, check_current);                             \
            fprintf(stderr, __VA_ARGS__);                                                                  \
            fputc('\n', stderr);                                                                           \
        }                                                                                                  \
    } while (0)

#define RUN(fn)                                                                                            \
    do {                                                                                                   \
        check_current = #fn;                                                                               \
        fn();                                                                                              \
    } while (0)

#define CHECK_DONE()                                                                                       \
    (printf("%d passed, %d failed\n", atomic_load(&passed), atomic_load(&failed)), atomic_load(&failed) ? 1 : 0)

#endif
