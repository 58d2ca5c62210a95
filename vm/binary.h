/*
 * binary.h — binary data objects: Writer, Reader, View, Pin (one value tag,
 * KP_T_BIN, with a kind byte), and the bookkeeping a HeapAllocation needs
 * while something borrows it (views, readers, pins).
 *
 * A Reader or View *borrows* the buffer it was made from: it holds the
 * checked reference it was given (`&buf`, so a moved, replaced or
 * out-of-scope buffer is found at the next use, with the same messages as
 * any stale reference) and counts itself on the HeapAllocation object
 * (`views`), so the object can never be freed under it: deinitializing a
 * buffer that is still borrowed or pinned is a runtime error, and the
 * object is kept (KP_OF_ORPHAN) until the last borrow ends.  Strings are
 * immutable and refcounted: a Reader or View over a string holds a count.
 * Implementation: stdlib/binary.c (Writer, Reader, read_int/write_int,
 * map_file, pin) and stdlib/view.c (views).
 */
#ifndef KP_BINARY_H
#define KP_BINARY_H

#include "object.h"

typedef enum KpBinKind {
    KP_BK_ANY = 0, KP_BK_WRITER, KP_BK_READER, KP_BK_VIEW, KP_BK_PIN, KP_BK__COUNT
} KpBinKind;

/* The element/storage types of binary data. */
typedef enum KpElem {
    KP_E_I8, KP_E_I16, KP_E_I32, KP_E_I64, KP_E_U8, KP_E_U16, KP_E_U32, KP_E_U64,
    KP_E_F32, KP_E_F64, KP_E__COUNT
} KpElem;

/* Where borrowed bytes come from. */
typedef struct KpBorrow {
    KpValue ref;        /* the reference the borrower was made from (checked) */
    KpHeapAlloc *h;     /* the buffer it must still refer to, or NULL */
    KpString *s;        /* or a string (one count held) */
    uint8_t mut;        /* made from $&: writes allowed */
    /* when ref is a reference to a register that holds the buffer itself:
     * that register's generation counter (the VM's stack is fixed, so it
     * stays the one to compare ref.aux with), else NULL */
    const uint32_t *gen;
} KpBorrow;

typedef struct KpBinObj {
    KpObj h;
    uint8_t bkind;      /* KpBinKind */
} KpBinObj;

typedef struct KpWriter {
    KpObj h;
    uint8_t bkind;
    uint8_t big;        /* .endian = "big" */
    unsigned char *data;
    size_t len, cap;
    KpAllocator *a;     /* where the bytes come from */
    KpValue *a_self;    /* that allocator's script value (for .allocator) */
} KpWriter;

typedef struct KpReader {
    KpObj h;
    uint8_t bkind;
    uint8_t big;
    KpBorrow src;
    int64_t pos;
} KpReader;

#define KP_VIEW_MAXDIM 8

typedef struct KpView {
    KpObj h;
    uint8_t bkind;
    uint8_t elem;       /* KpElem */
    uint8_t ndim;
    KpBorrow src;
    int64_t offset;     /* bytes from the start of the buffer */
    int64_t shape[KP_VIEW_MAXDIM];
    int64_t strides[KP_VIEW_MAXDIM]; /* in elements */
} KpView;

typedef struct KpPin {
    KpObj h;
    uint8_t bkind;
    KpHeapAlloc *buf;
} KpPin;

/* The value tag's hooks (vm/object.c calls them). */
bool kp_bin_drop(KpVM *vm, KpBinObj *o);
const char *kp_bin_kind_name(int kind);
bool kp_bin_tostring(KpVM *vm, KpBinObj *o);
/* HeapAllocation: deinit (refused while borrowed or pinned: the object is
 * kept until the last borrow ends), and the release of one borrow. */
bool kp_heap_drop(KpVM *vm, KpHeapAlloc *h);
void kp_heap_unborrow(KpVM *vm, KpHeapAlloc *h);
/* One more (d = 1) or one fewer (-1) Reader/View of h. */
void kp_heap_count_view(KpVM *vm, KpHeapAlloc *h, int d);
/* Refuses a write to a read-only mapping; true when writes are allowed. */
bool kp_heap_writable(KpVM *vm, KpHeapAlloc *h);
/* Names the pins on blocks of allocator `a` (for reset); false with the
 * error set when one is pinned. */
bool kp_pin_check_reset(KpVM *vm, KpAllocator *a);
/* Pins h (who: "pin", "kp_pin_bytes"; line 0 = no script line), unpins
 * it (an orphan is freed with its last pin), refuses `action` on it. */
bool kp_heap_pin(KpVM *vm, KpHeapAlloc *h, const char *who, uint32_t line);
void kp_heap_unpin(KpVM *vm, KpHeapAlloc *h);
bool kp_pin_refuse(KpVM *vm, KpHeapAlloc *h, const char *action);
/* "pin at line 4", "kp_pin_bytes": who pinned h most recently. */
const char *kp_pin_desc(KpHeapAlloc *h, char *buf, size_t n);
/* The region statistics of script allocator `a` (its KpAllocObj's
 * interface; NULL: the whole VM): bytes of its buffers pinned now and
 * Readers/Views of them alive now. */
void kp_bin_region_stats(KpVM *vm, KpAllocator *a, int64_t *pinned_bytes, int64_t *live_views);
/* At kp_vm_free: every kp_pin_bytes pin still held is reported on
 * write_err and ended (its buffer freed if its owner is gone). */
void kp_pins_shutdown(KpVM *vm);

/* Borrows: start (from an argument), the bytes (NULL with the error set
 * when the buffer is gone), end. */
bool kp_borrow_begin(KpVM *vm, KpValue arg, KpBorrow *b, const char *fn, bool want_mut);
unsigned char *kp_borrow_bytes(KpVM *vm, const KpBorrow *b, int64_t *len, const char *what);
void kp_borrow_end(KpVM *vm, KpBorrow *b);

/* Element types. */
int kp_elem_of_type(KpVM *vm, const KpType *t);  /* -1 if none */
extern const uint8_t kp_elem_size[KP_E__COUNT];
extern const char *const kp_elem_name[KP_E__COUNT];
KpValue kp_elem_load(int elem, const unsigned char *p, bool big);
/* Stores v at p; false with the error set when it is out of range. */
bool kp_elem_store(KpVM *vm, int elem, unsigned char *p, KpValue v, bool big, const char *fn);

/* Views: multi-index read/write (vm.c's index path). */
bool kp_view_index(KpVM *vm, KpView *v, KpValue idx, KpValue *out, KpValue *newval);
/* The VINDEX / VSETINDEX fast paths (stdlib/view.c), over the registers of
 * a bound #index call (args[0] the view, then the indices) or #setindex
 * call (the view, the value, the indices).  1: done (*out is the element);
 * 0: not the common case, nothing done (run the call); -1 (set only): the
 * store failed with the error raised. */
int kp_view_get_fast(KpVM *vm, const KpValue *args, int n, KpValue *out);
int kp_view_set_fast(KpVM *vm, const KpValue *args, int n);

#endif
