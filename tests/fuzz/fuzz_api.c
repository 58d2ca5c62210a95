/*
 * fuzz_api.c — libFuzzer target: the embedding API.  The input is decoded
 * into a sequence of API calls on one bounded VM (fuzz_host.h): each call
 * is an opcode byte followed by its operands (slots, integers, short byte
 * strings, names from a fixed table).  Slots run from -2 to 17 so that
 * bad slots are tried too; scripts (kp_vm_run_string, kp_vm_eval) are
 * length-prefixed pieces of the input itself.  A prelude declares a record
 * type, a host type with a deinit and a method, C functions and a few
 * globals, so calls have something real to act on.
 *
 * Checked: no sanitizer report; every failure has a message; each host
 * object's deinit runs exactly once (by kp_vm_free at the latest); the
 * host allocator is empty after kp_vm_free.
 */
#include "fuzz_host.h"

typedef struct Reader {
    const uint8_t *p, *end;
} Reader;

static unsigned u8(Reader *r) { return r->p < r->end ? *r->p++ : 0; }
static int slot(Reader *r) { return (int)(u8(r) % 20) - 2; }
static int64_t i64(Reader *r) {
    unsigned k = u8(r);
    switch (k % 4) {
    case 0: return (int64_t)(k / 4) - 8;
    case 1: return INT64_MIN + (k / 4);
    case 2: return INT64_MAX - (k / 4);
    default: {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v = v << 8 | u8(r);
        return (int64_t)v;
    }
    }
}
/* a piece of the input: a length byte, then that many bytes */
static const char *bytes(Reader *r, size_t *len) {
    size_t n = u8(r);
    if (n > (size_t)(r->end - r->p)) n = (size_t)(r->end - r->p);
    const char *s = (const char *)r->p;
    r->p += n;
    *len = n;
    return s;
}

static const char *const names[] = {
    "g_int", "g_list", "g_map", "g_str", "g_pt", "g_obj", "add", "twice", "touch", "print", "len", "str",
    "Point", "Obj", "nope", "", "x", "push", "g_fn",
};
#define NNAMES (sizeof names / sizeof names[0])
static const char *name(Reader *r) { return names[u8(r) % NNAMES]; }
static const char *const fields[] = {"x", "y", "tag", "nope", ""};
static const char *field(Reader *r) { return fields[u8(r) % 5]; }

/* ------------------------------------------------------------ host side */

typedef struct Obj {
    uint32_t magic;
    int64_t n;
} Obj;
static long objs_made, objs_freed;
static KpHostType *obj_type;

static void obj_deinit(void *payload, void *ud) {
    (void)ud;
    Obj *o = payload;
    if (o->magic != 0x0b1ec7) {
        fprintf(stderr, "fuzz: a host object deinitialized twice or never made\n");
        abort();
    }
    o->magic = 0xdead;
    objs_freed++;
}

/* make_obj(n: Int) -> Obj */
static int c_make_obj(KpVM *vm, int nargs, void *ud) {
    (void)ud;
    int64_t n = 0;
    if (nargs != 1 || kp_get_int(vm, 0, &n) != KP_OK) return kp_error(vm, "make_obj wants an Int");
    Obj *o = kp_new_object(vm, 0, obj_type);
    if (!o) return KP_ERR_RUNTIME;
    o->magic = 0x0b1ec7;
    o->n = n;
    objs_made++;
    return KP_OK;
}

/* touch(o: $&Obj) -> Int */
static int c_touch(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    Obj *o = kp_get_object(vm, 0, obj_type);
    if (!o) return kp_error(vm, "not an Obj");
    return kp_set_int(vm, 0, ++o->n);
}

/* twice(xs: &List#(Int)) -> List#(Int): a C function that uses the slot API
 * on its arguments and calls back into nothing */
static int c_twice(KpVM *vm, int nargs, void *ud) {
    (void)ud;
    if (nargs != 1) return kp_error(vm, "twice wants one argument");
    int64_t n = kp_get_count(vm, 0);
    if (n < 0) return kp_error(vm, "twice wants a list");
    if (kp_slots_ensure(vm, 3) != KP_OK) return KP_ERR_RUNTIME;
    if (kp_new_list(vm, 1) != KP_OK) return KP_ERR_RUNTIME;
    for (int64_t i = 0; i < n && i < 64; i++) {
        int64_t v = 0;
        if (kp_list_get(vm, 0, i, 2) != KP_OK || kp_get_int(vm, 2, &v) != KP_OK) return KP_ERR_RUNTIME;
        if (kp_set_int(vm, 2, (int64_t)((uint64_t)v * 2)) != KP_OK) return KP_ERR_RUNTIME;
        if (kp_list_append(vm, 1, 2) != KP_OK) return KP_ERR_RUNTIME;
    }
    return kp_slot_move(vm, 1, 0);
}

static const char prelude[] =
    "Point : Type = (\n    .x : Int = 0\n    .y : Int = 0\n    .tag : String = \"\"\n)\n"
    "g_int := 7\n"
    "g_list := [1, 2, 3]\n"
    "g_map := (\"a\" = 1, \"b\" = 2)\n"
    "g_str := \"hello\"\n"
    "g_pt := Point(.x = 1)\n"
    "g_obj := make_obj(5)\n"
    "add (a: Int, b: Int) -> Int := { return a + b }\n"
    "g_fn (xs: $&List#(Int), n: Int) -> Int := { push(xs, n)\n return len(xs) }\n";

/* ------------------------------------------------------------ the calls */

#define MAX_HANDLES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzHost h;
    KpVM *vm = fuzz_vm_new(&h);
    objs_made = objs_freed = 0;
    obj_type = kp_define_type(vm, "Obj", &(KpTypeDef){.size = sizeof(Obj), .deinit = obj_deinit});
    if (!obj_type) abort();
    static const KpMode mut[] = {KP_MODE_MUTREF};
    static const KpMode ref[] = {KP_MODE_REF};
    if (kp_register(vm, "make_obj", c_make_obj, 1, NULL, NULL) != KP_OK ||
        kp_register(vm, "touch", c_touch, 1, mut, NULL) != KP_OK ||
        kp_register(vm, "twice", c_twice, 1, ref, NULL) != KP_OK)
        abort();
    int rc = kp_vm_run_string(vm, "prelude.kp", prelude, sizeof prelude - 1);
    if (rc != KP_OK) {
        fprintf(stderr, "fuzz: the prelude fails: %s\n", kp_vm_last_error(vm));
        abort();
    }
    kp_slots_ensure(vm, 16);

    KpHandle *handles[MAX_HANDLES] = {0};
    static int trace = -1; /* FUZZ_TRACE=1: each call and its result on stderr */
    if (trace < 0) trace = getenv("FUZZ_TRACE") != NULL;
    Reader r = {data, data + size};
    int steps = 0;
    while (r.p < r.end && steps++ < 400) {
        unsigned op = u8(&r) % 32;
        int a, b, c;
        size_t len;
        const char *s;
        int64_t v;
        rc = KP_OK;
        switch (op) {
        case 0: rc = kp_slots_ensure(vm, (int)(u8(&r) % 40) - 2); break;
        case 1: a = slot(&r); rc = kp_set_int(vm, a, i64(&r)); break;
        case 2: a = slot(&r); s = bytes(&r, &len); rc = kp_set_string(vm, a, s, len); break;
        case 3: a = slot(&r); rc = kp_set_float(vm, a, (double)i64(&r) / 7.0); break;
        case 4: rc = kp_new_list(vm, slot(&r)); break;
        case 5: rc = kp_new_map(vm, slot(&r)); break;
        case 6: a = slot(&r); b = slot(&r); rc = kp_list_append(vm, a, b); break;
        case 7: a = slot(&r); b = slot(&r); c = slot(&r); rc = kp_map_set(vm, a, b, c); break;
        case 8: { /* read a slot every way */
            a = slot(&r);
            (void)kp_get_kind(vm, a);
            const char *tn = kp_get_type_name(vm, a);
            if (tn) (void)strlen(tn);
            bool bo;
            int64_t iv;
            double dv;
            (void)kp_get_bool(vm, a, &bo);
            (void)kp_get_int(vm, a, &iv);
            (void)kp_get_float(vm, a, &dv);
            const char *str = kp_get_string(vm, a, &len);
            if (str && strlen(str) > len) abort(); /* NUL-terminated, at most len before the NUL */
            (void)kp_get_count(vm, a);
            break;
        }
        case 9: a = slot(&r); v = i64(&r); b = slot(&r); rc = kp_list_get(vm, a, v, b); break;
        case 10: a = slot(&r); b = slot(&r); c = slot(&r); rc = kp_map_get(vm, a, b, c); break;
        case 11: a = slot(&r); b = slot(&r); rc = kp_slot_move(vm, a, b); break;
        case 12: case 13: {
            s = bytes(&r, &len);
            kp_vm_set_budget(vm, FUZZ_BUDGET);
            if (trace) fprintf(stderr, "script: [%.*s]\n", (int)len, s);
            rc = op == 12 ? kp_vm_run_string(vm, "api.kp", s, len) : kp_vm_eval(vm, "<repl>", s, len, KP_EVAL_REPL);
            if (rc == KP_ERR_INCOMPLETE) rc = KP_OK;
            break;
        }
        case 14: { const char *n = name(&r); rc = kp_get_global(vm, n, slot(&r)); break; }
        case 15: { const char *n = name(&r); rc = kp_get_global_ref(vm, n, slot(&r)); break; }
        case 16: { const char *n = name(&r); rc = kp_set_global(vm, n, slot(&r)); break; }
        case 17:
            a = slot(&r); b = slot(&r); c = (int)(u8(&r) % 4); kp_vm_set_budget(vm, FUZZ_BUDGET);
            rc = kp_call(vm, a, b, c, slot(&r));
            break;
        case 18: {
            unsigned i = u8(&r) % MAX_HANDLES;
            kp_handle_release(vm, handles[i]);
            handles[i] = kp_handle_new(vm, slot(&r));
            break;
        }
        case 19: { unsigned i = u8(&r) % MAX_HANDLES; if (handles[i]) rc = kp_handle_get(vm, handles[i], slot(&r)); break; }
        case 20: { unsigned i = u8(&r) % MAX_HANDLES; kp_handle_release(vm, handles[i]); handles[i] = NULL; break; }
        case 21: { a = slot(&r); rc = kp_new_record(vm, a, name(&r)); break; }
        case 22: { a = slot(&r); const char *f = field(&r); rc = kp_set_field(vm, a, f, slot(&r)); break; }
        case 23: { a = slot(&r); const char *f = field(&r); rc = kp_get_field(vm, a, f, slot(&r)); break; }
        case 24: {
            void *p = NULL;
            a = slot(&r);
            rc = kp_pin_bytes(vm, a, &p, &len);
            if (rc == KP_OK) {
                if (len) memset(p, 0x5a, len < 64 ? len : 64); /* the bytes are the host's to use */
                if (u8(&r) & 1) rc = kp_unpin_bytes(vm, a);
            }
            break;
        }
        case 25: rc = kp_unpin_bytes(vm, slot(&r)); break;
        case 26: {
            a = slot(&r);
            Obj *o = kp_new_object(vm, a, obj_type);
            if (o) { o->magic = 0x0b1ec7; objs_made++; }
            else rc = KP_ERR_ARG;
            break;
        }
        case 27: { Obj *o = kp_get_object(vm, slot(&r), obj_type); if (o && o->magic != 0x0b1ec7) abort(); break; }
        case 28: rc = kp_vm_finish(vm); break;
        case 29: rc = kp_set_bool(vm, slot(&r), u8(&r) & 1); break;
        case 30: rc = kp_set_unit(vm, slot(&r)); break;
        default: (void)kp_slot_count(vm); break;
        }
        if (trace) fprintf(stderr, "op %u -> %d %s\n", op, rc, rc ? kp_vm_last_error(vm) : "");
        fuzz_check_error(vm, rc);
    }
    for (int i = 0; i < MAX_HANDLES; i++) kp_handle_release(vm, handles[i]);
    fuzz_vm_free(vm, &h);
    if (objs_made != objs_freed) {
        fprintf(stderr, "fuzz: %ld host objects made, %ld deinitialized\n", objs_made, objs_freed);
        abort();
    }
    return 0;
}
