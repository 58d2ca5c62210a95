/*
 * test_builtins.c — the builtin tables (stdlib/builtins.h) are well formed:
 * every row's parameter text splits into parameters with a mode, a name
 * and a balanced type text; variadic rows have a parameter to repeat; the
 * splitter reads modes, named parameters and defaults as documented and
 * rejects malformed text; and a VM registers every row.
 */
#include <stdio.h>
#include <string.h>

#include "keep.h"
#include "stdlib/builtins.h"

static int passed, failed;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (cond) {                                                       \
            passed++;                                                     \
        } else {                                                          \
            failed++;                                                     \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

static bool balanced(const char *s, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '(') d++;
        if (s[i] == ')' && --d < 0) return false;
    }
    return d == 0;
}

int main(void) {
    int rows = 0;
    for (int m = 0; kp_builtin_modules[m]; m++) {
        for (const KpBuiltin *b = kp_builtin_modules[m]; b->name; b++) {
            KpBuiltinParam ps[16];
            int n = kp_builtin_params(b, ps, 16);
            rows++;
            CHECK(n >= 0, "row '%s': malformed parameters \"%s\"", b->name, b->params);
            CHECK(b->fn != NULL, "row '%s' has no C function", b->name);
            CHECK(b->result && *b->result && balanced(b->result, strlen(b->result)), "row '%s': bad result", b->name);
            if (b->flags & KP_BF_VARIADIC) CHECK(n >= 1, "variadic row '%s' has no parameter to repeat", b->name);
            for (int i = 0; i < n; i++)
                CHECK(ps[i].name_len && ps[i].type_len && balanced(ps[i].type, ps[i].type_len),
                      "row '%s' parameter %d", b->name, i + 1);
        }
    }
    CHECK(rows > 30, "only %d rows", rows);

    KpBuiltin t = {"f", NULL, "s: &String, xs: $&List#(T), v: T, .base: Int = 10", "Int", 0};
    KpBuiltinParam ps[8];
    int n = kp_builtin_params(&t, ps, 8);
    CHECK(n == 4, "split into %d", n);
    if (n == 4) {
        CHECK(ps[0].mode == KP_PM_REF && ps[0].type_len == 6 && !memcmp(ps[0].type, "String", 6), "param 1");
        CHECK(ps[1].mode == KP_PM_MUTREF && ps[1].type_len == 8 && !memcmp(ps[1].type, "List#(T)", 8), "param 2");
        CHECK(ps[2].mode == KP_PM_VALUE && ps[2].type_len == 1, "param 3");
        CHECK(ps[3].named && ps[3].name_len == 4 && ps[3].def && ps[3].def_len == 2 && !memcmp(ps[3].def, "10", 2),
              "param 4");
    }
    KpBuiltin bad1 = {"f", NULL, "s &String", "Int", 0}, bad2 = {"f", NULL, "s: ", "Int", 0},
              bad3 = {"f", NULL, ": Int", "Int", 0};
    CHECK(kp_builtin_params(&bad1, ps, 8) < 0, "missing colon accepted");
    CHECK(kp_builtin_params(&bad2, ps, 8) < 0, "missing type accepted");
    CHECK(kp_builtin_params(&bad3, ps, 8) < 0, "missing name accepted");
    CHECK(kp_builtin_params(&t, ps, 2) < 0, "overflow of out[] accepted");

    KpVM *vm = kp_vm_new(NULL);
    CHECK(vm != NULL, "a VM registers every row");
    if (vm) kp_vm_free(vm);

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
