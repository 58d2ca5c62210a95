/*
 * value.h — the representation of Keep values.
 *
 * Design.  A KpValue is 16 bytes: a one-byte tag, a byte of flags, a 32-bit
 * auxiliary word and an 8-byte payload (an int64, a double or a pointer) —
 * Lua's TValue layout, chosen over NaN-boxing because Keep's Int is a full
 * 64-bit integer.  Registers, record fields, list elements and map entries
 * are all KpValues, so moving a value is copying 16 bytes and writing a tag.
 *
 * Tags are ordered so that the hot questions are one comparison:
 *   tag <  KP_T_STR     nothing to release (scalars, references, functions,
 *                       types, moved/unset markers);
 *   tag >= KP_T_STR     the slot owns something that must be dropped;
 *   tag >= KP_T_RECORD  the value moves (records, lists, maps, allocations,
 *                       allocators) — the single-owner objects.
 * Strings are immutable and refcounted, so "copying" one is an increment.
 *
 * A slot that no longer owns its value holds KP_T_MOVED, with aux = the
 * source position of the move (line << 12 | col), so a later read can say
 * where the value went.  KP_T_UNSET marks a field or variable that has not
 * been given a value yet.
 */
#ifndef KP_VALUE_H
#define KP_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum KpTag {
    KP_T_UNSET = 0, /* no value yet (reading it is an error)             */
    KP_T_UNIT,      /* ()                                                 */
    KP_T_BOOL,      /* i = 0/1                                            */
    KP_T_INT,       /* i: Int (64-bit, checked)                           */
    KP_T_FLOAT,     /* f: Float (f64)                                     */
    KP_T_I8, KP_T_I16, KP_T_I32,          /* sized ints, range-checked     */
    KP_T_U8, KP_T_U16, KP_T_U32, KP_T_U64, /* (U64 kept in i as bits)      */
    KP_T_MOVED,     /* moved-out slot; aux = move position                */
    KP_T_REF,       /* reference: p = KpValue* slot; flags KP_VF_MUT       */
    KP_T_FUNC,      /* p = KpFunc* (overload set), not owned              */
    KP_T_TYPE,      /* p = KpType*, not owned                             */
    KP_T_SYSTEM,    /* the `system` capability record, not owned          */
    KP_T_NAME,      /* an interned name (field-name constants): p = char* */
    KP_T_STR,       /* p = KpString*, refcounted                          */
    KP_T_ITER,      /* a for-loop's lock on a list/map: p = KpObj*,
                       aux = next index; dropping it unlocks             */
    KP_T_CTXSAVE,   /* `using`: the context allocator to restore (p);
                       dropping it restores it, also when unwinding      */
    KP_T_BOX,       /* one count of a keep box (p = KpBox*): the kept
                       local's own count until `keep` hands it to owners */
    KP_T_RECORD,    /* p = KpRecord*  — owned, moves                      */
    KP_T_LIST,      /* p = KpList*                                        */
    KP_T_MAP,       /* p = KpMap*                                         */
    KP_T_HEAP,      /* p = KpHeapAlloc* (HeapAllocation)                  */
    KP_T_ALLOCATOR, /* p = KpAllocObj* (an allocator value)               */
    KP_T_BIN,       /* p = KpBinObj*: Writer, Reader, View, pin (binary.h) */
    KP_T__COUNT
} KpTag;

/* Value flags. */
enum {
    KP_VF_MUT = 1u << 0,   /* REF: mutable reference ($&)                 */
    KP_VF_PLACE = 1u << 1, /* REF: an implicit borrow made for a call
                              argument written as a plain place (`f(x)`);
                              a by-value parameter moves out of it         */
    KP_VF_ELEM = 1u << 2,  /* REF: points into a list/map element (moving
                              out of it is an error)                       */
    KP_VF_BOXED = 1u << 3, /* REF: points at a keep box's value            */
    KP_VF_HEAP = 1u << 4,  /* REF: into a heap object: aux = its block id,
                              x = the block's generation (see vm/object.c) */
    KP_VF_STATIC = 1u << 5,/* REF: to a slot that outlives every use (VM
                              capabilities, host handles, C temporaries)   */
    KP_VF_DEAD = 1u << 6,  /* MOVED: a reference whose referent is gone;
                              aux = where it went, p = what it was        */
    KP_VF_DEINIT = 1u << 7,/* MOVED: ended by deinit(x), not moved away    */
};

typedef struct KpValue {
    uint8_t tag;
    uint8_t flags;
    uint16_t x;   /* spare */
    uint32_t aux; /* MOVED: position; REF: owner generation (later use) */
    union {
        int64_t i;
        double f;
        void *p;
    };
} KpValue;

#define KP_NEEDS_DROP(v) ((v).tag >= KP_T_STR)
#define KP_IS_MOVABLE(v) ((v).tag >= KP_T_RECORD)
/* A plain value: a scalar (Unit, Bool, Int, Float, sized ints), copied by
 * a read with nothing to count or check. */
#define KP_IS_PLAIN(v) ((uint8_t)((v).tag - 1) < KP_T_MOVED - 1)
#define KP_IS_SIZED_INT(t) ((t) >= KP_T_I8 && (t) <= KP_T_U64)

static inline KpValue kp_int(int64_t i) {
    KpValue v = {.tag = KP_T_INT};
    v.i = i;
    return v;
}
static inline KpValue kp_float(double f) {
    KpValue v = {.tag = KP_T_FLOAT};
    v.f = f;
    return v;
}
static inline KpValue kp_bool(bool b) {
    KpValue v = {.tag = KP_T_BOOL};
    v.i = b;
    return v;
}
static inline KpValue kp_unit(void) { return (KpValue){.tag = KP_T_UNIT}; }
static inline KpValue kp_unset(void) { return (KpValue){.tag = KP_T_UNSET}; }
static inline KpValue kp_ptr(KpTag tag, void *p) {
    KpValue v = {.tag = (uint8_t)tag};
    v.p = p;
    return v;
}

/* Packs a source position into a MOVED value's aux. */
#define KP_POS_PACK(line, col) (((uint32_t)(line) << 12) | ((col) > 4095 ? 4095u : (uint32_t)(col)))
#define KP_POS_LINE(aux) ((aux) >> 12)
#define KP_POS_COL(aux) ((aux) & 4095u)

#endif
