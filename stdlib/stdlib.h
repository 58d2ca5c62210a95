/*
 * stdlib.h — registration of the standard library into a VM, for the
 * driver (api/).  Internal: hosts use include/keep.h.
 *
 * The library's functions are natives over vm/vm.h; the VM itself does not
 * know them, the driver installs them into every new VM.
 */
#ifndef KP_STDLIB_H
#define KP_STDLIB_H

#include "../include/keep.h"

/* stdlib/builtins.c: print, str, len, push, ... (sets vm->init_failed when
 * out of memory). */
void kp_stdlib_register(KpVM *vm);
/* stdlib/memory.c: system.memory, the allocator types and their methods. */
void kp_memory_register(KpVM *vm);
/* stdlib/binary.c and stdlib/view.c: Float32, Writer, Reader, View,
 * read_int/write_int, map_file, pin. */
void kp_binary_register(KpVM *vm);

#endif
