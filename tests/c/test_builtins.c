/*
 * test_builtins.c — the builtin tables (stdlib/builtins.h) are well formed:
 * every row's parameter text splits into parameters with a mode, a name
 * and a balanced type text; variadic rows have a parameter to repeat; the
 * splitter reads modes, named parameters and defaults as documented and
 * rejects malformed text; and a VM registers every row.
 */
#include <stdio.h>

#include "check.h"
#include <string.h>

#include "keep.h"
#include "stdlib/builtins.h"


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
            CHECKF(n >= 0, "row '%s': malformed parameters \"%s\"", b->name, b->params);
            CHECKF(b->fn != NULL, "row '%s' has no C function", b->name);
            CHECKF(b->result && *b->result && balanced(b->result, strlen(b->result)), "row '%s': bad result", b->name);
            if (b->flags & KP_BF_VARIADIC) CHECKF(n >= 1, "variadic row '%s' has no parameter to repeat", b->name);
            for (int i = 0; i < n; i++)
                CHECKF(ps[i].name_len && ps[i].type_len && balanced(ps[i].type, ps[i].type_len),
                      "row '%s' parameter %d", b->name, i + 1);
        }
    }
    CHECKF(rows > 30, "only %d rows", rows);

    KpBuiltin t = {"f", NULL, "s: &String, xs: $&List#(T), v: T, .base: Int = 10", "Int", 0};
    KpBuiltinParam ps[8];
    int n = kp_builtin_params(&t, ps, 8);
    CHECKF(n == 4, "split into %d", n);
    if (n == 4) {
        CHECKF(ps[0].mode == KP_PM_REF && ps[0].type_len == 6 && !memcmp(ps[0].type, "String", 6), "param 1");
        CHECKF(ps[1].mode == KP_PM_MUTREF && ps[1].type_len == 8 && !memcmp(ps[1].type, "List#(T)", 8), "param 2");
        CHECKF(ps[2].mode == KP_PM_VALUE && ps[2].type_len == 1, "param 3");
        CHECKF(ps[3].named && ps[3].name_len == 4 && ps[3].def && ps[3].def_len == 2 && !memcmp(ps[3].def, "10", 2),
              "param 4");
    }
    KpBuiltin bad1 = {"f", NULL, "s &String", "Int", 0}, bad2 = {"f", NULL, "s: ", "Int", 0},
              bad3 = {"f", NULL, ": Int", "Int", 0};
    CHECKF(kp_builtin_params(&bad1, ps, 8) < 0, "missing colon accepted");
    CHECKF(kp_builtin_params(&bad2, ps, 8) < 0, "missing type accepted");
    CHECKF(kp_builtin_params(&bad3, ps, 8) < 0, "missing name accepted");
    CHECKF(kp_builtin_params(&t, ps, 2) < 0, "overflow of out[] accepted");

    KpVM *vm = kp_vm_new(NULL);
    CHECKF(vm != NULL, "a VM registers every row");
    if (vm) kp_vm_free(vm);

    return CHECK_DONE();
}
