/*
 * stdlib.h — registration of the standard library into a VM, for the
 * driver (api/).  Internal: hosts use include/keep.h.
 *
 * The library's functions are natives over vm/vm.h; the VM itself does not
 * know them, the driver installs them into every new VM.
 */
#ifndef KP_STDLIB_H
#define KP_STDLIB_H

#include <stdbool.h>

#include "../include/keep.h"

/* stdlib/registry.c: registers every module's builtin table
 * (stdlib/builtins.h) — print, str, len, push, ..., the allocators of
 * memory.c.  Sets vm->init_failed when out of memory or when a row is
 * malformed. */
void kp_stdlib_register(KpVM *vm);
/* Registers the library's functions named `name` (interned), if any; for
 * vm->lib_lookup, which registers the library lazily, a name at a time. */
bool kp_stdlib_lookup(KpVM *vm, const char *name);

#endif
