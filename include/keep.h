/*
 * keep.h — the public embedding API of Keep.  This is the only header a
 * host includes; every type here is opaque or plain data.
 *
 * A host creates a VM from a KpConfig, runs source text or files in it and
 * frees it.  Nothing here calls exit() or longjmps across the host's frames:
 * every function reports failure through its return code, and the text of
 * the last error (with file:line:col) is available from kp_vm_last_error.
 * There is no global state: several VMs may live in one process.
 */
#ifndef KEEP_H
#define KEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct KpVM KpVM;

/* Result codes (also the `keep` binary's exit codes). */
enum {
    KP_OK = 0,            /* success                                     */
    KP_ERR_RUNTIME = 1,   /* a runtime error (message in last_error)     */
    KP_ERR_COMPILE = 2,   /* syntax or compile errors                    */
    KP_ERR_USAGE = 64,    /* bad arguments (a file that cannot be read)  */
};

#ifndef KP_WRITEFN_DEFINED
#define KP_WRITEFN_DEFINED
/* Output callback: `bytes` (len bytes, not NUL-terminated) borrowed for the
 * duration of the call. */
typedef void (*KpWriteFn)(void *ud, const char *bytes, size_t len);
#endif

typedef struct KpConfig {
    KpWriteFn write_out;  /* script output (print); NULL = stdout         */
    KpWriteFn write_err;  /* diagnostics and error reports; NULL = stderr */
    void *ud;             /* passed to both callbacks                     */
    int64_t mem_limit;    /* cap on script heap bytes; <=0 = none         */
    bool debug_alloc;     /* run scripts on a debug root allocator        */
    bool stats;           /* report each allocator's statistics at its deinit
                             and the root's at kp_vm_finish (to write_err) */
} KpConfig;

/* Creates a VM.  cfg may be NULL (defaults).  Returns NULL when out of
 * memory.  The VM owns everything it allocates; kp_vm_free releases it. */
KpVM *kp_vm_new(const KpConfig *cfg);

/* Deinitializes the VM's top-level variables (in reverse declaration order,
 * running their deinits), then frees the VM and everything it holds. */
void kp_vm_free(KpVM *vm);

/* Compiles and runs `len` bytes of source named `name` (used in messages;
 * borrowed, must outlive the VM).  `src` is copied.  Returns KP_OK,
 * KP_ERR_COMPILE (diagnostics were written to write_err) or KP_ERR_RUNTIME
 * (the error and stack trace were written to write_err). */
int kp_vm_run_string(KpVM *vm, const char *name, const char *src, size_t len);

/* Reads the file at `path` and runs it as kp_vm_run_string does; returns
 * KP_ERR_USAGE if the file cannot be read.  `path` is copied. */
int kp_vm_run_file(KpVM *vm, const char *path);

/* Deinitializes the top-level variables now (what kp_vm_free does first),
 * returning KP_ERR_RUNTIME if a deinit raised an error. */
int kp_vm_finish(KpVM *vm);

/* The message of the last error (compile or runtime), "" if none.  Owned by
 * the VM, valid until the next call into it. */
const char *kp_vm_last_error(KpVM *vm);

/* Script heap statistics: bytes and blocks currently allocated by script
 * values, and totals since creation. */
typedef struct KpHeapStats {
    int64_t live_bytes, live_count, peak_bytes, total_allocs, total_frees;
} KpHeapStats;
void kp_vm_heap_stats(KpVM *vm, KpHeapStats *out);

/* Sets system.args, the script's arguments (copied).  Returns KP_OK. */
int kp_vm_set_args(KpVM *vm, int argc, const char *const *argv);

/* Debugging aids for the `keep` tool. */
void kp_vm_set_dump_bytecode(KpVM *vm, bool on);

#ifdef __cplusplus
}
#endif
#endif
