/*
 * vm.c — the dispatch loop, calls, and runtime errors.
 *
 * Design.  One function, execute(), runs bytecode until the frame it was
 * entered for returns.  Dispatch is computed goto where the compiler has it
 * (GCC, Clang) and a switch otherwise, both generated from the opcode list.
 * Hot paths (Int arithmetic, compare-and-branch, calls to a function with
 * one overload) stay in the loop; everything else calls out.
 *
 * Errors never longjmp: every helper returns false after setting the
 * message, and the loop jumps to one error path that locates the error,
 * builds the stack trace and unwinds the frames it owns — dropping every
 * owned register from the top down, running each active defer at its
 * watermark (the same order as a normal scope exit).
 */
#include "vm.h"
#include "binary.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>


#if defined(__GNUC__) || defined(__clang__)
#define KP_COMPUTED_GOTO 1
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

#ifdef KP_COMPUTED_GOTO
#define KP_DISPATCH_INFO "computed goto on"
#else
#define KP_DISPATCH_INFO "computed goto off"
#endif
#if defined(__clang__)
#define KP_CC_INFO "clang " __clang_version__
#elif defined(__GNUC__)
#define KP_CC_INFO "gcc " __VERSION__
#else
#define KP_CC_INFO "an unknown C compiler"
#endif

const char *kp_build_info(void) { return KP_CC_INFO ", " KP_DISPATCH_INFO; }

const char *const kp_opcode_names[] = {
#define KP_X_NAME(name, doc) #name,
    KP_OPCODES(KP_X_NAME)
#undef KP_X_NAME
};

/* ------------------------------------------------------------ buffers */

void kp_buf_reset(KpBuf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

bool kp_buf_reserve(KpVM *vm, KpBuf *b, size_t need) {
    if (need <= b->cap) return true;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) ncap *= 2;
    char *d = kp_realloc(vm->host, b->data, b->cap, ncap, 1, NULL);
    if (!d) return false;
    if (!b->data) d[0] = 0;
    b->data = d;
    b->cap = ncap;
    return true;
}

bool kp_buf_add(KpVM *vm, KpBuf *b, const char *s, size_t n) {
    if (!kp_buf_reserve(vm, b, b->len + n + 1)) {
        /* out of memory: the error message and the stack trace live in
         * space reserved when the VM was made, so they are cut short
         * instead of lost */
        if ((b != &vm->err && b != &vm->trace) || b->len + 1 >= b->cap) return false;
        n = b->cap - 1 - b->len;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
        return false;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return true;
}

bool kp_buf_printf(KpVM *vm, KpBuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return false;
    if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
    return kp_buf_add(vm, b, tmp, (size_t)n);
}

void kp_buf_prepend(KpVM *vm, KpBuf *b, const char *s) {
    size_t n = strlen(s);
    if (!kp_buf_reserve(vm, b, b->len + n + 1)) {
        if (b->cap <= n) return; /* (the reserved error space is larger) */
        b->len = b->cap - 1 - n; /* out of memory: the message is cut short */
    }
    memmove(b->data + n, b->data, b->len);
    memcpy(b->data, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void kp_buf_free(KpVM *vm, KpBuf *b) {
    if (b->data) kp_free(vm->host, b->data, b->cap, 1, NULL);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------ errors */

static const char *const kind_names[KP_EK__COUNT] = {
    "runtime", "out_of_memory", "bounds", "arithmetic", "type", "moved", "conversion", "io",
    "key", "assert", "stack_overflow", "user", "host", "interrupt", "budget",
};

const char *kp_vm_error_kind_name(int kind) { return kind >= 0 && kind < KP_EK__COUNT ? kind_names[kind] : NULL; }

int kp_vm_error_kind_of(const char *name, size_t len) {
    for (int k = 0; k < KP_EK__COUNT; k++)
        if (strlen(kind_names[k]) == len && !memcmp(kind_names[k], name, len)) return k;
    return -1;
}

/* The kind of a runtime error, from its message: the one place that
 * classifies them (docs/language.md lists the kinds).  The first row
 * whose text the message contains decides (a message a C function or a
 * failed deinit wraps keeps its kind). */
static int classify(const char *msg) {
    static const struct { const char *text; uint8_t kind; } rows[] = {
        {"out of memory", KP_EK_OOM},
        {"stack overflow", KP_EK_STACK},
        {"assertion failed", KP_EK_ASSERT},
        {"parse_int(", KP_EK_CONVERSION},
        {"parse_float(", KP_EK_CONVERSION},
        {"division by zero", KP_EK_ARITH},
        {"overflow", KP_EK_ARITH},
        {"out of range", KP_EK_BOUNDS},
        {"of an empty", KP_EK_BOUNDS},
        {"from an empty", KP_EK_BOUNDS},
        {"not found", KP_EK_KEY},
        {"use of moved value", KP_EK_MOVED},
        {"use of a moved value", KP_EK_MOVED},
        {"use of a reference to", KP_EK_MOVED},
        {"which was deinitialized", KP_EK_MOVED},
        {"use of a value that was", KP_EK_MOVED},
        {"has no value yet", KP_EK_MOVED},
        {"cannot open", KP_EK_IO},
        {"cannot read", KP_EK_IO},
        {"cannot write", KP_EK_IO},
        {"cannot remove", KP_EK_IO},
        {"but the value is", KP_EK_TYPE},
        {"cannot apply", KP_EK_TYPE},
        {"cannot compare", KP_EK_TYPE},
        {"cannot call", KP_EK_TYPE},
        {"cannot index", KP_EK_TYPE},
        {"cannot iterate over", KP_EK_TYPE},
        {"mismatched integer types", KP_EK_TYPE},
        {"must be an Int", KP_EK_TYPE},
        {"needs a", KP_EK_TYPE},
        {"has no field", KP_EK_TYPE},
        {"no overload", KP_EK_TYPE},
    };
    if (!strncmp(msg, "int(", 4)) return KP_EK_CONVERSION;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strstr(msg, rows[i].text)) return rows[i].kind;
    return KP_EK_RUNTIME;
}

static bool verror(KpVM *vm, int kind, const char *fmt, va_list ap) {
    if (vm->status == KP_ERR_RUNTIME && vm->err.len) return false; /* keep the first */
    char tmp[1024];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    kp_buf_reset(&vm->err);
    kp_buf_add(vm, &vm->err, tmp, strlen(tmp));
    vm->status = KP_ERR_RUNTIME;
    vm->err_located = false;
    vm->err_kind = (uint8_t)(kind >= 0 ? kind : classify(tmp));
    return false;
}

bool kp_vm_error(KpVM *vm, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(vm, -1, fmt, ap);
    va_end(ap);
    return false;
}

bool kp_vm_error_kind(KpVM *vm, int kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(vm, kind, fmt, ap);
    va_end(ap);
    return false;
}

static const KpLineInfo *frame_line(const KpFrame *f) {
    if (!f->proto || !f->pc) return NULL;
    size_t off = (size_t)(f->pc - f->proto->code);
    if (off > 0) off--;
    if (off >= f->proto->ncode) return NULL;
    return &f->proto->lines[off];
}

bool kp_vm_error_unsaid(KpVM *vm) {
    if (vm->err.len) return false;
    /* a helper failed without a message: out of memory, if the host
     * refused memory (the only failure a helper may leave unsaid) */
    if (vm->host_refusals)
        kp_vm_error(vm, "out of memory: the host allocator refused %zu bytes", vm->host_refused_bytes);
    else
        kp_vm_error(vm, "internal error: an operation failed without a message");
    return true;
}

/* The innermost try block of frame f that covers its running
 * instruction, or NULL. */
static const KpTryInfo *frame_try(const KpFrame *f) {
    const KpProto *p = f->proto;
    if (!p || !p->ntries || !f->pc || f->is_defer) return NULL;
    uint32_t off = (uint32_t)(f->pc - p->code);
    if (off) off--;
    for (uint32_t k = p->ntries; k-- > 0;)
        if (off >= p->tries[k].start_pc && off < p->tries[k].end_pc) return &p->tries[k];
    return NULL;
}

/* Can the error in vm->err be caught by a try block?  Not an interrupt,
 * an exhausted budget or exit(), and not while an error unwinds (the
 * deinits and defers that run then cannot catch: the first error is the
 * one reported). */
static bool catchable(const KpVM *vm) {
    return !vm->unwinding && !vm->exiting && vm->err_kind != KP_EK_INTERRUPT && vm->err_kind != KP_EK_BUDGET;
}

/* The diagnostic of a located error, through the sink (source.c's
 * kp_diag_emit, the one formatting point). */
static void report_error(KpVM *vm) {
    enum { MAX_TRACE = 40 };
    const char *trace[MAX_TRACE];
    size_t ntrace = 0, off = 0;
    for (uint32_t k = 0; k < vm->ntrace && ntrace < MAX_TRACE && vm->trace.data && off < vm->trace.len; k++) {
        trace[ntrace++] = vm->trace.data + off;
        off += strlen(vm->trace.data + off) + 1;
    }
    const char *msg = vm->err.data ? vm->err.data : "runtime error";
    if (vm->err_located && vm->err.len >= vm->err_head) msg += vm->err_head;
    KpDiagSink sink = {vm->write_err, vm->on_diagnostic, vm->write_ud};
    kp_diag_emit(&sink, vm->err_src, KP_SEVERITY_ERROR, KP_ERR_RUNTIME, "runtime error", vm->err_line, vm->err_col,
                 msg, NULL, 0, trace, ntrace);
}

/* The source named `name` of a running function or of a function the
 * VM knows, or NULL (then the report shows no source line). */
static const KpSource *source_named(KpVM *vm, const char *name) {
    for (int i = vm->nframes - 1; i >= 0; i--) {
        const KpProto *p = vm->frames[i].proto;
        if (p && p->src && p->src->name && !strcmp(p->src->name, name)) return p->src;
    }
    for (uint32_t k = 0; k < vm->nfuncs; k++) {
        const KpFunc *f = vm->funcs[k];
        for (uint32_t j = 0; f && j < f->n; j++) {
            const KpProto *p = f->ovs[j]->proto;
            if (p && p->src && p->src->name && !strcmp(p->src->name, name)) return p->src;
        }
    }
    return NULL;
}

/* Locates the error once — at the running instruction, with the stack
 * trace (or, for error(e) of a caught Error, at e's place with e's trace,
 * already in vm->trace) — and reports it, unless a try block will catch
 * it; then prefixes "file:line:col: " to the message for
 * kp_vm_last_error. */
static void locate_error(KpVM *vm) {
    if (vm->err_located) return;
    kp_vm_error_unsaid(vm);
    vm->err_located = true;
    KpFrame *top = vm->nframes ? &vm->frames[vm->nframes - 1] : NULL;
    const KpLineInfo *li = top ? frame_line(top) : NULL;
    const KpSource *src = top && top->proto ? top->proto->src : NULL;
    vm->err_line = li ? li->line : 0;
    vm->err_col = li ? li->col : 0;
    if (vm->reraise.set) {
        vm->reraise.set = false;
        src = source_named(vm, vm->reraise.file);
        vm->err_line = vm->reraise.line;
        vm->err_col = vm->reraise.col;
    } else {
        /* the stack, most recent call first: NUL-separated entries in trace */
        enum { MAX_TRACE = 40 };
        size_t n = 0;
        kp_buf_reset(&vm->trace);
        int shown = 0;
        for (int i = vm->nframes - 1; i >= 0 && n < MAX_TRACE; i--) {
            KpFrame *f = &vm->frames[i];
            if (f->is_defer) continue;
            const KpLineInfo *l = frame_line(f);
            n++;
            if (shown == 20 && i > 10) {
                kp_buf_printf(vm, &vm->trace, "... %d more frames", i - 9);
                kp_buf_add(vm, &vm->trace, "", 1);
                i = 10;
                continue;
            }
            shown++;
            kp_buf_printf(vm, &vm->trace, "%s (%s:%u)", f->proto ? f->proto->name : "?",
                          f->proto && f->proto->src ? f->proto->src->name : "?", l ? l->line : 0);
            kp_buf_add(vm, &vm->trace, "", 1);
        }
        vm->ntrace = (uint32_t)n;
    }
    vm->err_src = src;
    vm->status = KP_ERR_RUNTIME;
    /* caught: a frame of the stack is in a try block that covers it */
    vm->err_caught = false;
    if (catchable(vm))
        for (int i = vm->nframes - 1; i >= 0 && !vm->err_caught; i--)
            if (frame_try(&vm->frames[i])) vm->err_caught = true;
    /* report now, before the unwinding runs deinits and defers — but a
     * parallel worker's error is the calling thread's to report, once
     * every worker has stopped (kp_vm_adopt_error) */
    vm->err_head = 0;
    if (vm->par) vm->err_caught = false;
    else if (!vm->err_caught) report_error(vm);
    /* last_error: "file:line:col: message" */
    char head[256];
    snprintf(head, sizeof head, "%s:%u:%u: ", src ? src->name : "?", vm->err_line, vm->err_col);
    size_t before = vm->err.len;
    kp_buf_prepend(vm, &vm->err, head);
    vm->err_head = vm->err.len - before;
}

void kp_vm_adopt_error(KpVM *vm, KpVM *from) {
    kp_buf_reset(&vm->err);
    kp_buf_add(vm, &vm->err, from->err.data ? from->err.data : "", from->err.len);
    kp_buf_reset(&vm->trace);
    if (from->trace.len) kp_buf_add(vm, &vm->trace, from->trace.data, from->trace.len);
    vm->ntrace = from->ntrace;
    vm->err_kind = from->err_kind;
    vm->err_line = from->err_line;
    vm->err_col = from->err_col;
    vm->err_src = from->err_src;
    vm->err_head = from->err_head;
    vm->status = KP_ERR_RUNTIME;
    vm->err_located = true;
    if (from->exiting) {
        vm->exiting = true;
        vm->exit_code = from->exit_code;
    }
    vm->err_caught = false;
    if (catchable(vm))
        for (int i = vm->nframes - 1; i >= 0 && !vm->err_caught; i--)
            if (frame_try(&vm->frames[i])) vm->err_caught = true;
    if (!vm->err_caught && !vm->exiting) report_error(vm);
}

/* Name of the variable in register `reg` of frame `f` at its pc. */
static const char *reg_name(KpFrame *f, uint32_t reg) {
    if (!f || !f->proto) return NULL;
    uint32_t off = (uint32_t)(f->pc - f->proto->code);
    for (uint32_t i = 0; i < f->proto->nlocals; i++) {
        KpLocalInfo *l = &f->proto->locals[i];
        if (l->reg == reg && off >= l->start_pc && off <= l->end_pc + 1) return l->name;
    }
    return NULL;
}

static bool bad_value(KpVM *vm, KpValue v, const char *name) {
    if (v.tag == KP_T_MOVED && (v.flags & KP_VF_DEAD)) {
        if (v.aux)
            return kp_vm_error(vm, "use of a reference to %s, which was deinitialized at line %u:%u", (const char *)v.p,
                               KP_POS_LINE(v.aux), KP_POS_COL(v.aux));
        return kp_vm_error(vm, "use of a reference to %s", (const char *)v.p);
    }
    if (v.tag == KP_T_MOVED && (v.flags & KP_VF_DEINIT)) {
        if (name)
            return kp_vm_error(vm, "use of '%s', which was deinitialized at line %u:%u", name, KP_POS_LINE(v.aux),
                               KP_POS_COL(v.aux));
        return kp_vm_error(vm, "use of a value that was deinitialized at line %u:%u", KP_POS_LINE(v.aux), KP_POS_COL(v.aux));
    }
    if (v.tag == KP_T_MOVED) {
        if (name)
            return kp_vm_error(vm, "use of moved value '%s' (moved at line %u:%u)", name, KP_POS_LINE(v.aux),
                               KP_POS_COL(v.aux));
        return kp_vm_error(vm, "use of a moved value (moved at line %u:%u)", KP_POS_LINE(v.aux), KP_POS_COL(v.aux));
    }
    if (name) return kp_vm_error(vm, "'%s' has no value yet", name);
    return kp_vm_error(vm, "use of a value that was never set");
}

/* The slot a reference points at; NULL (error set) when its referent is
 * gone: the check that makes every reference a checked reference. */
static KpValue *ref_slot_err(KpVM *vm, KpValue r) {
    KpValue *s = kp_ref_slot(r);
    if (!s) bad_value(vm, kp_ref_dead(r), NULL);
    return s;
}

/* ------------------------------------------------------------ arithmetic */

static const char *op_sym(int op) {
    switch (op) {
    case KP_BC_ADD: return "+";
    case KP_BC_SUB: return "-";
    case KP_BC_MUL: return "*";
    case KP_BC_DIV: return "/";
    case KP_BC_MOD: return "%";
    case KP_BC_LT: return "<";
    case KP_BC_LE: return "<=";
    default: return "?";
    }
}

static bool is_intlike(uint8_t t) { return t == KP_T_INT || KP_IS_SIZED_INT(t); }

static bool int_op(KpVM *vm, int op, int64_t a, int64_t b, int64_t *r) {
    switch (op) {
    case KP_BC_ADD: if (__builtin_add_overflow(a, b, r)) return kp_vm_error(vm, "integer overflow in %" PRId64 " + %" PRId64, a, b); return true;
    case KP_BC_SUB: if (__builtin_sub_overflow(a, b, r)) return kp_vm_error(vm, "integer overflow in %" PRId64 " - %" PRId64, a, b); return true;
    case KP_BC_MUL: if (__builtin_mul_overflow(a, b, r)) return kp_vm_error(vm, "integer overflow in %" PRId64 " * %" PRId64, a, b); return true;
    case KP_BC_DIV:
        if (b == 0) return kp_vm_error(vm, "division by zero");
        if (a == INT64_MIN && b == -1) return kp_vm_error(vm, "integer overflow in %" PRId64 " / -1", a);
        *r = a / b;
        return true;
    case KP_BC_MOD:
        if (b == 0) return kp_vm_error(vm, "division by zero (in %%)");
        *r = (b == -1) ? 0 : a % b;
        return true;
    }
    return false;
}

static const struct { int64_t lo, hi; } sized_rng[] = {
    {INT8_MIN, INT8_MAX}, {INT16_MIN, INT16_MAX}, {INT32_MIN, INT32_MAX},
    {0, UINT8_MAX}, {0, UINT16_MAX}, {0, UINT32_MAX}, {0, INT64_MAX},
};

static const char *tag_name(uint8_t t) {
    static const char *n[] = {"Int8", "Int16", "Int32", "UInt8", "UInt16", "UInt32", "UInt64"};
    return KP_IS_SIZED_INT(t) ? n[t - KP_T_I8] : "Int";
}

/* The arithmetic instructions' common case after both operands Int or
 * both Float: an Int read through a live reference (a & capture or
 * parameter; one level, as kp_deref follows it) with an Int.  Sets *dst
 * (which owns nothing) and returns true; false, changing nothing, where
 * arith_slow must decide (a chain, a conversion, an overflow, an error). */
static bool __attribute__((noinline)) arith_ref_int(const KpVM *vm, int op, KpValue *dst, const KpValue *a, const KpValue *b) {
    if (a->tag == KP_T_REF && kp_ref_ok_in(vm, *a)) a = a->p;
    if (b->tag == KP_T_REF && kp_ref_ok_in(vm, *b)) b = b->p;
    if (a->tag != KP_T_INT || b->tag != KP_T_INT) return false;
    int64_t r;
    switch (op) {
    case KP_BC_ADD: if (__builtin_add_overflow(a->i, b->i, &r)) return false; break;
    case KP_BC_SUB: if (__builtin_sub_overflow(a->i, b->i, &r)) return false; break;
    case KP_BC_MUL: if (__builtin_mul_overflow(a->i, b->i, &r)) return false; break;
    default: return false;
    }
    *dst = kp_int(r);
    return true;
}

static bool arith_slow(KpVM *vm, int op, KpValue *dst, KpValue a, KpValue b) {
    a = kp_deref(a);
    b = kp_deref(b);
    if (a.tag == KP_T_MOVED || a.tag == KP_T_UNSET) return bad_value(vm, a, NULL);
    if (b.tag == KP_T_MOVED || b.tag == KP_T_UNSET) return bad_value(vm, b, NULL);
    KpValue r = {0};
    if (is_intlike(a.tag) && is_intlike(b.tag)) {
        uint8_t t = a.tag;
        if (a.tag != b.tag) {
            if (a.tag == KP_T_INT) t = b.tag;
            else if (b.tag != KP_T_INT)
                return kp_vm_error(vm, "mismatched integer types: %s %s %s (convert one side first)", tag_name(a.tag),
                                   op_sym(op), tag_name(b.tag));
        }
        int64_t x = 0;
        if (t == KP_T_U64) {
            uint64_t ua = (uint64_t)a.i, ub = (uint64_t)b.i, ur = 0;
            bool ovf = false;
            if ((a.tag == KP_T_INT && a.i < 0) || (b.tag == KP_T_INT && b.i < 0)) return kp_vm_error(vm, "UInt64 arithmetic with a negative Int");
            switch (op) {
            case KP_BC_ADD: ovf = __builtin_add_overflow(ua, ub, &ur); break;
            case KP_BC_SUB: ovf = __builtin_sub_overflow(ua, ub, &ur); break;
            case KP_BC_MUL: ovf = __builtin_mul_overflow(ua, ub, &ur); break;
            case KP_BC_DIV: if (!ub) return kp_vm_error(vm, "division by zero"); ur = ua / ub; break;
            case KP_BC_MOD: if (!ub) return kp_vm_error(vm, "division by zero (in %%)"); ur = ua % ub; break;
            }
            if (ovf) return kp_vm_error(vm, "UInt64 overflow in %s", op_sym(op));
            r.tag = KP_T_U64;
            r.i = (int64_t)ur;
        } else {
            if (!int_op(vm, op, a.i, b.i, &x)) return false;
            if (t != KP_T_INT) {
                int k = t - KP_T_I8;
                if (x < sized_rng[k].lo || x > sized_rng[k].hi)
                    return kp_vm_error(vm, "%s overflow: %" PRId64 " %s %" PRId64 " = %" PRId64 " is out of range",
                                       tag_name(t), a.i, op_sym(op), b.i, x);
            }
            r.tag = t;
            r.i = x;
        }
    } else if ((a.tag == KP_T_FLOAT || is_intlike(a.tag)) && (b.tag == KP_T_FLOAT || is_intlike(b.tag))) {
        double x = a.tag == KP_T_FLOAT ? a.f : (double)a.i;
        double y = b.tag == KP_T_FLOAT ? b.f : (double)b.i;
        r.tag = KP_T_FLOAT;
        switch (op) {
        case KP_BC_ADD: r.f = x + y; break;
        case KP_BC_SUB: r.f = x - y; break;
        case KP_BC_MUL: r.f = x * y; break;
        case KP_BC_DIV: r.f = x / y; break;
        case KP_BC_MOD: r.f = fmod(x, y); break;
        }
    } else if (op == KP_BC_ADD && a.tag == KP_T_STR && b.tag == KP_T_STR) {
        KpString *x = a.p, *y = b.p;
        size_t n = (size_t)x->len + y->len;
        KpString *s = kp_obj_new(vm, vm->ctx, KP_T_STR, sizeof(KpString) + n + 1);
        if (!s) return false;
        if (n > UINT32_MAX - 64) return kp_vm_error(vm, "string too long");
        s->rc = 1;
        s->len = (uint32_t)n;
        memcpy(s->data, x->data, x->len);
        memcpy(s->data + x->len, y->data, y->len);
        s->data[n] = 0;
        s->hash = kp_hash_bytes(s->data, n);
        r = kp_ptr(KP_T_STR, s);
    } else {
        const char *an = kp_value_type_name(vm, a);
        char abuf[128];
        snprintf(abuf, sizeof abuf, "%s", an ? an : "?");
        const char *hint = (op == KP_BC_ADD && (a.tag == KP_T_STR || b.tag == KP_T_STR)) ? " (use str() to convert)" : "";
        return kp_vm_error(vm, "cannot apply %s to %s and %s%s", op_sym(op), abuf, kp_value_type_name(vm, b), hint);
    }
    if (KP_NEEDS_DROP(*dst)) {
        KpValue old = *dst;
        *dst = r;
        return kp_drop(vm, old);
    }
    *dst = r;
    return true;
}

/* Ordering: returns -2 on error. */
static int compare(KpVM *vm, KpValue a, KpValue b, int op) {
    a = kp_deref(a);
    b = kp_deref(b);
    if (a.tag == KP_T_MOVED || a.tag == KP_T_UNSET) { bad_value(vm, a, NULL); return -2; }
    if (b.tag == KP_T_MOVED || b.tag == KP_T_UNSET) { bad_value(vm, b, NULL); return -2; }
    if (is_intlike(a.tag) && is_intlike(b.tag)) {
        if (a.tag == KP_T_U64 || b.tag == KP_T_U64) {
            if (a.tag != KP_T_U64 && a.i < 0) return -1;
            if (b.tag != KP_T_U64 && b.i < 0) return 1;
            uint64_t x = (uint64_t)a.i, y = (uint64_t)b.i;
            return x < y ? -1 : x > y;
        }
        return a.i < b.i ? -1 : a.i > b.i;
    }
    if ((a.tag == KP_T_FLOAT || is_intlike(a.tag)) && (b.tag == KP_T_FLOAT || is_intlike(b.tag))) {
        double x = a.tag == KP_T_FLOAT ? a.f : (double)a.i;
        double y = b.tag == KP_T_FLOAT ? b.f : (double)b.i;
        if (x != x || y != y) return 2; /* NaN: unordered, every comparison false */
        return x < y ? -1 : x > y;
    }
    if (a.tag == KP_T_STR && b.tag == KP_T_STR) {
        KpString *x = a.p, *y = b.p;
        uint32_t n = x->len < y->len ? x->len : y->len;
        int c = memcmp(x->data, y->data, n);
        if (c) return c < 0 ? -1 : 1;
        return x->len < y->len ? -1 : x->len > y->len;
    }
    char abuf[128];
    snprintf(abuf, sizeof abuf, "%s", kp_value_type_name(vm, a));
    kp_vm_error(vm, "cannot compare %s and %s with %s", abuf, kp_value_type_name(vm, b), op_sym(op));
    return -2;
}

/* ------------------------------------------------------------ values */

/* Owned values, for --trace-ownership (strings are copied, not moved). */
#define TRACED(v) (KP_IS_MOVABLE(v) || (v).tag == KP_T_BOX)

void kp_vm_trace_own(KpVM *vm, const char *kind, KpValue v, const KpValue *slot, uint32_t count) {
    char buf[320];
    const char *file = "?", *name = NULL;
    uint32_t line = 0, col = 0;
    KpFrame *fr = vm->nframes ? &vm->frames[vm->nframes - 1] : NULL;
    if (fr && fr->proto && fr->pc) {
        KpProto *p = fr->proto;
        uint32_t at = (uint32_t)(fr->pc - p->code);
        if (at > 0 && at <= p->ncode) {
            line = p->lines[at - 1].line;
            col = p->lines[at - 1].col;
        }
        if (p->src) file = p->src->name;
        if (slot && slot >= fr->base && slot < fr->base + p->nregs && !(fr->is_main && slot < vm->stack + fr->globals))
            name = reg_name(fr, (uint32_t)(slot - fr->base));
    }
    if (slot && !name && ((slot >= vm->stack && slot < vm->stack + vm->main_nregs) || slot >= vm->stack_end))
        name = kp_vm_global_name_at(vm, slot);
    const char *end_kind = v.tag == KP_T_BOX ? "release" : "drop";
    if (v.tag == KP_T_BOX) { /* a keep box: its variable and its value */
        KpBox *b = v.p;
        if (!name) name = b->name;
        v = b->v;
    }
    if (!kind) { /* the end of the program: top-level variables */
        snprintf(buf, sizeof buf, "[own] %s:end %s %s: %s\n", vm->trace_file ? vm->trace_file : "?", end_kind, name ? name : "_",
                 kp_value_type_name(vm, v));
    } else if (count) {
        snprintf(buf, sizeof buf, "[own] %s:%u:%u %s %s: %s (%u owner%s)\n", file, line, col, kind, name ? name : "_",
                 kp_value_type_name(vm, v), count, count == 1 ? "" : "s");
    } else {
        snprintf(buf, sizeof buf, "[own] %s:%u:%u %s %s: %s\n", file, line, col, kind, name ? name : "_",
                 kp_value_type_name(vm, v));
    }
    if (vm->catching) { /* not in the listing: the error decided it */
        size_t n = strlen(buf);
        if (n) buf[n - 1] = 0;
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " (unwinding to a catch)\n");
    }
    vm->write_err(vm->write_ud, buf, strlen(buf));
}

/* Register traffic in two 8-byte words.  A value is a header word (tag,
 * flags, x, aux) and a payload word.  The hot instructions write a
 * register as those two words and copy one as two 8-byte loads and
 * stores: a 16-byte load of a value that was just written in smaller
 * pieces cannot take the data from the store buffer and waits for the
 * stores to retire (a store-forwarding stall, ~12 cycles), and the value
 * an instruction reads is usually the one the previous instruction
 * wrote.  (The empty asm keeps the compiler from merging the two words
 * back into one 16-byte access.) */
_Static_assert(sizeof(KpValue) == 16 && offsetof(KpValue, tag) == 0 && offsetof(KpValue, aux) == 4 &&
                   offsetof(KpValue, i) == 8, "KpValue: an 8-byte header word, then the payload");

static inline void vcopy(KpValue *d, const KpValue *s) {
    uint64_t w0, w1;
    memcpy(&w0, s, 8);
    memcpy(&w1, (const char *)s + 8, 8);
    __asm__("" : "+r"(w0), "+r"(w1));
    memcpy(d, &w0, 8);
    memcpy((char *)d + 8, &w1, 8);
}

/* Sets a register to a scalar (the header has no flags or aux). */
static inline void vset_i(KpValue *d, uint8_t tag, int64_t i) {
    uint64_t h = tag;
    memcpy(d, &h, 8);
    d->i = i;
}

static inline void vset_f(KpValue *d, double f) {
    uint64_t h = KP_T_FLOAT;
    memcpy(d, &h, 8);
    d->f = f;
}

/* The first byte of view v's elements when its borrow is in the common
 * state — a string, or the register reference it was made from still
 * valid and still holding the same live buffer — else NULL (the general
 * path, kp_borrow_bytes, then says what went wrong).  The checks of
 * kp_borrow_bytes, inlined for VGET. */
static inline unsigned char *view_base_fast(const KpVM *vm, const KpView *v) {
    const KpValue *b;
    if (LIKELY(v->src.gen != NULL)) {
        /* kp_ref_ok_in of a register reference, its register known */
        if (UNLIKELY(*v->src.gen != v->src.ref.aux)) return NULL;
        b = v->src.ref.p;
    } else {
        if (v->src.s) return (unsigned char *)v->src.s->data;
        KpValue r = v->src.ref;
        if (UNLIKELY(r.tag != KP_T_REF || !kp_ref_ok_in(vm, r))) return NULL;
        b = r.p;
    }
    if (UNLIKELY(b->tag != KP_T_HEAP || b->p != v->src.h || !v->src.h->data)) return NULL;
    return v->src.h->data;
}

/* VGET's common case: R(i->b) is a View (or a reference to one) with
 * (i->d & 15) dimensions, of the element kind the compiler counts on (i->d
 * >> 4: 0 any, 1 Float, 2 Int — codegen.c kp_cg_view_elem), every index
 * an Int in range, its borrow valid (view_base_fast), and R(i->a) holds
 * nothing to drop.  Then the element is in R(i->a) and the result is true;
 * otherwise nothing is done.  i0, i1: the first two indices; a third is
 * RK(x->b) of the EXTRA word x after i. */
__attribute__((always_inline)) static inline bool vget_fast(const KpVM *vm, const KpInstr *i, const KpValue *i0,
                                                            const KpValue *i1, KpValue *R, const KpValue *K) {
    const KpValue *vv = &R[i->b];
    if (vv->tag == KP_T_REF) { /* a variable holding a reference to the view */
        if (UNLIKELY(!kp_ref_ok_in(vm, *vv))) return false;
        vv = vv->p;
    }
    KpValue *dst = &R[i->a];
    if (UNLIKELY(vv->tag != KP_T_BIN || ((KpBinObj *)vv->p)->bkind != KP_BK_VIEW || KP_NEEDS_DROP(*dst))) return false;
    const KpView *v = vv->p;
    unsigned nd = i->d & 15u, want = i->d >> 4;
    if (UNLIKELY(v->ndim != nd || i0->tag != KP_T_INT || i1->tag != KP_T_INT ||
                 (uint64_t)i0->i >= (uint64_t)v->shape[0] || (uint64_t)i1->i >= (uint64_t)v->shape[1]))
        return false;
    /* (in range: the view's extent was checked against the buffer when it
     * was made, so no product overflows) */
    int64_t e = i0->i * v->strides[0] + i1->i * v->strides[1];
    if (nd == 3) {
        const KpInstr *x = i + 1;
        const KpValue *i2 = (x->b & KP_RK_CONST) ? &K[x->b & 0x7fff] : &R[x->b];
        if (i2->tag != KP_T_INT || (uint64_t)i2->i >= (uint64_t)v->shape[2]) return false;
        e += i2->i * v->strides[2];
    }
    unsigned char *base = view_base_fast(vm, v);
    if (UNLIKELY(!base)) return false;
    if (LIKELY(v->elem == KP_E_F64 && want != 2)) {
        double f;
        memcpy(&f, base + v->offset + e * 8, 8);
        vset_f(dst, f);
        return true;
    }
    /* a view of another kind than the compiler counts on takes the general
     * sequence, whose CHECK then says so */
    if (want == 1 ? v->elem < KP_E_F32 : want == 2 ? v->elem >= KP_E_U64 : false) return false;
    *dst = kp_elem_load(v->elem, base + v->offset + e * (int64_t)kp_elem_size[v->elem], false);
    return true;
}

static bool __attribute__((noinline)) set_slot_drop(KpVM *vm, KpValue *dst, KpValue v) {
    KpValue old = *dst;
    if (UNLIKELY(vm->trace_own) && TRACED(old)) kp_vm_trace_own(vm, old.tag == KP_T_BOX ? "release" : "drop", old, dst, 0);
    *dst = v;
    return kp_drop(vm, old);
}

/* Is reference r live (kp_ref_ok with vm at hand)? */
static inline bool ref_live(const KpVM *vm, KpValue r) {
    return (r.flags & KP_VF_STATIC) || kp_ref_ok_in(vm, r);
}

/* The fast paths' operand: v itself, or what it refers to through one or
 * two live references (a $& parameter's reference to a caller's variable
 * that holds one); `need` are the flags each reference must have one of
 * (KP_VF_MUT | KP_VF_PLACE for a write, 0 for a read).  Anything else — a
 * dead reference, a longer chain — is left as a reference, which no fast
 * path takes: the general path reports it. */
static inline const KpValue *through_refs(const KpVM *vm, const KpValue *v, uint8_t need) {
    if (v->tag == KP_T_REF && (!need || (v->flags & need)) && kp_ref_ok_in(vm, *v)) {
        v = v->p;
        if (v->tag == KP_T_REF && (!need || (v->flags & need)) && kp_ref_ok_in(vm, *v)) v = v->p;
    }
    return v;
}

/* A reference to `slot` inside heap object `owner`, which already has its
 * block (owner->block != 0): kp_make_ref's heap case, inline.  Not on a
 * parallel worker: there another worker may be giving owner its block
 * (object.c block_of_shared), so callers test vm->par before they read
 * owner->block. */
static inline __attribute__((always_inline)) KpValue heap_ref(const KpVM *vm, const KpValue *slot, const KpObj *owner, uint8_t flags) {
    KpValue r = kp_ptr(KP_T_REF, (void *)slot);
    r.flags = (uint8_t)(flags | KP_VF_HEAP);
    r.aux = owner->block;
    r.x = vm->blocks[r.aux].gen;
    return r;
}

/* `x == ()` or `() == x` (a or b is Unit): true when x, through live
 * references, is Unit — what kp_equal_checked answers, as one tag test.
 * False when neither is Unit. */
static inline bool unit_cmp(const KpVM *vm, const KpValue *a, const KpValue *b, bool *eq) {
    const KpValue *o;
    if (a->tag == KP_T_UNIT) o = b;
    else if (b->tag == KP_T_UNIT) o = a;
    else return false;
    while (o->tag == KP_T_REF) {
        if (!ref_live(vm, *o)) {
            *eq = false; /* a dead reference: kp_deref's marker is no Unit */
            return true;
        }
        o = o->p;
    }
    *eq = o->tag == KP_T_UNIT;
    return true;
}

/* Stores v in *dst, dropping what *dst owned (the drop is out of line:
 * most stores replace a scalar). */
static inline bool set_slot(KpVM *vm, KpValue *dst, KpValue v) {
    if (UNLIKELY(KP_NEEDS_DROP(*dst))) return set_slot_drop(vm, dst, v);
    *dst = v;
    return true;
}

static bool is_locked(KpValue v) {
    return (v.tag == KP_T_LIST || v.tag == KP_T_MAP) && ((KpObj *)v.p)->lock;
}

/* Reads a value for a consuming use: moves movable values out of *src
 * (leaving MOVED at `pos`), copies the rest (strings: one more count). */
static bool take_from(KpVM *vm, KpValue *src, KpValue *out, uint32_t pos, bool elem, const char *name) {
    if (!src) return false; /* a dead reference: ref_slot_err set the error */
    KpValue v = *src;
    if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) return bad_value(vm, v, name);
    if (KP_IS_MOVABLE(v)) {
        if (elem) return kp_vm_error(vm, "cannot move %s out of a list or map element; use clone(...), pop(...) or a reference", kp_a(kp_value_type_name(vm, v)));
        if (is_locked(v)) return kp_vm_error(vm, "cannot move %s while a for loop is iterating over it", name ? name : "this value");
        if (UNLIKELY(vm->trace_own)) kp_vm_trace_own(vm, "move", v, src, 0);
        src->tag = KP_T_MOVED;
        src->aux = pos;
        src->p = NULL;
    } else if (v.tag == KP_T_STR) {
        kp_str_incref(v.p);
    } else if (v.tag == KP_T_ITER) {
        return kp_vm_error(vm, "internal: iterator read");
    }
    *out = v;
    return true;
}

/* Is a write through `v` allowed?  Every reference on the way to the
 * value must be mutable ($&) or an implicit borrow of a place. */
static bool writable(KpValue v) {
    while (v.tag == KP_T_REF) {
        if (!(v.flags & (KP_VF_MUT | KP_VF_PLACE))) return false;
        if (!kp_ref_ok(v)) return true; /* the use reports the dead reference */
        v = *(KpValue *)v.p;
    }
    return true;
}

/* A reference into the VM stack (a local variable) must not be stored in a
 * list or map: the container could outlive the variable.  (A kept variable
 * lives in a box on the heap, so references to it may be.)  Records may
 * hold references to locals — a view record beside its referent is the
 * common case; the compiler's escape checks cover the visible escapes. */
static bool check_stored_ref(KpVM *vm, KpValue v, const char *where) {
    if (v.tag != KP_T_REF || (v.flags & KP_VF_PLACE)) return true;
    KpValue *p = v.p;
    if (p >= vm->stack && p < vm->stack_end)
        return kp_vm_error(vm, "a reference to a local variable cannot be stored in %s: it could outlive the variable; "
                           "keep the variable with the value that holds the reference (keep x with v)", where);
    return true;
}

/* Field lookup; returns the slot or NULL with the error set. */
static KpValue *special_field(KpVM *vm, KpValue v, const char *name) {
    if (v.tag == KP_T_SYSTEM && v.aux == 0) {
        if (!strcmp(name, "memory")) {
            if (!vm->no_memory) return &vm->sys_memory;
            kp_vm_error(vm, "this program was not granted system.memory: it cannot make a PageAllocator or a "
                            "DirectAllocator; allocate from the context allocator or an allocator over it");
            return NULL;
        }
        if (!strcmp(name, "fs")) {
            if (vm->allow_fs) return &vm->sys_fs;
            kp_vm_error(vm, "this program was not granted the file system (system.fs)");
            return NULL;
        }
        if (!strcmp(name, "random")) {
            if (vm->allow_random) return &vm->sys_random;
            kp_vm_error(vm, "this program was not granted random numbers from the system (system.random)");
            return NULL;
        }
        if (!strcmp(name, "env")) {
            if (vm->allow_env) return &vm->sys_env;
            kp_vm_error(vm, "this program was not granted the environment variables (system.env)");
            return NULL;
        }
        if (!strcmp(name, "args")) {
            if (vm->sys_args.tag == KP_T_UNSET) kp_vm_set_args(vm, 0, NULL);
            return &vm->sys_args;
        }
        if (!strcmp(name, "script")) {
            if (vm->sys_script.tag == KP_T_UNSET && kp_vm_set_script(vm, "") != KP_OK) return NULL;
            return &vm->sys_script;
        }
        kp_vm_error(vm, "system has no capability '%s' (it has memory, args, script%s%s%s)", name, vm->allow_fs ? ", fs" : "",
                    vm->allow_random ? ", random" : "", vm->allow_env ? ", env" : "");
        return NULL;
    }
    if (v.tag == KP_T_HEAP) {
        KpHeapAlloc *h = v.p;
        static _Thread_local KpValue tmp;
        if (!strcmp(name, "size")) { tmp = kp_int(h->size); return &tmp; }
        if (!strcmp(name, "data")) { tmp = kp_int((int64_t)(intptr_t)h->data); return &tmp; }
        if (!strcmp(name, "allocator")) {
            if (h->from_self) return h->from_self;
            if (h->mapped) {
                kp_vm_error(vm, "a mapped file has no allocator: its bytes are the file's pages");
                return NULL;
            }
            kp_vm_error(vm, "this HeapAllocation came from the root allocator, which is not a script value");
            return NULL;
        }
        kp_vm_error(vm, "HeapAllocation has no field '%s' (it has data, size and allocator)", name);
        return NULL;
    }
    kp_vm_error(vm, "cannot read field '%s' of %s", name, kp_a(kp_value_type_name(vm, v)));
    return NULL;
}

static KpValue *field_slot(KpVM *vm, KpValue obj, const char *name, KpFrame *fr, uint32_t reg) {
    KpValue v = kp_deref(obj);
    if (v.tag == KP_T_SYSTEM || v.tag == KP_T_HEAP) return special_field(vm, v, name);
    if (v.tag != KP_T_RECORD) {
        /* through a reference, the name would be the reference's, not the value's */
        if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) { bad_value(vm, v, obj.tag == KP_T_REF ? NULL : reg_name(fr, reg)); return NULL; }
        kp_vm_error(vm, "cannot read field '%s' of %s", name, kp_a(kp_value_type_name(vm, v)));
        return NULL;
    }
    KpRecord *r = v.p;
    for (uint32_t i = 0; i < r->type->nfields; i++)
        if (r->type->fnames[i] == name) return &r->f[i];
    kp_vm_error(vm, "%s has no field '%s'", r->type->name, name);
    return NULL;
}

/* The slot of field K (a name constant) in records of type t, or -1.  The
 * constant's aux caches the slot last found with the number of the type
 * it was found in (KpType.cid << 16 | slot: one per instruction's name
 * constant, an inline cache), so a field read in a loop costs one
 * comparison instead of a scan of the names.  An empty cache is ~0 (no
 * type is numbered 0xffff); a type gets its number at its first lookup,
 * on the main thread (parallel workers share types and constants: they
 * use the numbers, relaxed atomics, and give none). */
static int32_t __attribute__((noinline)) field_lookup(KpVM *vm, KpType *t, KpValue *k) {
    for (uint32_t fi = 0; fi < t->nfields; fi++)
        if (t->fnames[fi] == k->p) {
            uint16_t cid = __atomic_load_n(&t->cid, __ATOMIC_RELAXED);
            if (!cid && !vm->par && vm->next_cid < 0xfffe) {
                cid = ++vm->next_cid;
                __atomic_store_n(&t->cid, cid, __ATOMIC_RELAXED);
            }
            if (cid && fi <= 0xffff) __atomic_store_n(&k->aux, (uint32_t)cid << 16 | fi, __ATOMIC_RELAXED);
            return (int32_t)fi;
        }
    return -1;
}

static inline int32_t field_cached(KpVM *vm, const KpType *t, KpValue *k) {
    uint32_t a = __atomic_load_n(&k->aux, __ATOMIC_RELAXED);
    if (LIKELY(a >> 16 == __atomic_load_n(&t->cid, __ATOMIC_RELAXED))) return (int32_t)(a & 0xffff);
    return field_lookup(vm, (KpType *)t, k);
}

/* The fused instructions' field (GETFX, SETFX, JFUNIT): the slot of
 * field K(k) of the record *obj is, itself or through one or two live
 * references (`need` as through_refs), or NULL when it is no record or
 * has no such field — the general sequence after them then decides. */
static inline KpValue *fused_field(KpVM *vm, const KpValue *obj, KpValue *k, uint8_t need) {
    const KpValue *ov = through_refs(vm, obj, need);
    if (ov->tag != KP_T_RECORD) return NULL;
    KpRecord *rec = ov->p;
    int32_t fi = field_cached(vm, rec->type, k);
    return fi >= 0 ? &rec->f[fi] : NULL;
}

static KpType *field_type(KpValue obj, const char *name) {
    KpValue v = kp_deref(obj);
    if (v.tag != KP_T_RECORD) return NULL;
    KpRecord *r = v.p;
    for (uint32_t i = 0; i < r->type->nfields; i++)
        if (r->type->fnames[i] == name) return r->type->ftypes[i];
    return NULL;
}

/* Reads slot `s` per the GETFIELD flags d into *out. */
static bool read_place(KpVM *vm, KpValue *s, uint8_t d, uint32_t pos, bool elem, KpValue *out, const char *what,
                       KpObj *owner) {
    if (d & 2) { /* reference */
        if (s->tag == KP_T_MOVED || s->tag == KP_T_UNSET) return bad_value(vm, *s, what);
        KpValue r = kp_make_ref(vm, s, owner,
                                (uint8_t)(((d & 4) ? KP_VF_MUT : 0) | ((d & 8) ? KP_VF_PLACE : 0) | (elem ? KP_VF_ELEM : 0)));
        if (s->tag == KP_T_REF && (d & 8)) r = *s; /* a reference variable passes itself on */
        if (r.tag != KP_T_REF) return false; /* out of memory */
        *out = r;
        return true;
    }
    if (d & 1) return take_from(vm, s, out, pos, elem && !(d & 16), what); /* 16: out of a dying temporary */
    KpValue v = *s;
    if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) return bad_value(vm, v, what);
    if (KP_IS_MOVABLE(v)) {
        *out = kp_make_ref(vm, s, owner, (uint8_t)(KP_VF_PLACE | (elem ? KP_VF_ELEM : 0)));
        return out->tag == KP_T_REF;
    }
    if (v.tag == KP_T_STR) kp_str_incref(v.p);
    *out = v;
    return true;
}

/* GETFIELD's second path: a field of a record reached through at most
 * two live references, its slot from the name constant's cache, holding
 * a value (not UNSET or MOVED) — read as the general path reads it
 * (read_place: a reference to it, a move, a copy), without the general
 * path's name scan and dereferences.  Returns 1 when done, 0 when the
 * general path must decide (nothing changed), -1 after an error. */
static int __attribute__((noinline)) getfield_record(KpVM *vm, KpFrame *fr, const KpInstr *i, KpValue *R, KpValue *K,
                                                     uint32_t pos) {
    const KpValue *ov = through_refs(vm, &R[i->b], 0);
    if (ov->tag != KP_T_RECORD) return 0;
    KpRecord *rec = ov->p;
    int32_t fi = field_cached(vm, rec->type, &K[i->c]);
    if (fi < 0) return 0;
    KpValue *s = &rec->f[fi];
    if (s->tag == KP_T_UNSET || s->tag == KP_T_MOVED) return 0;
    KpValue out;
    if (!read_place(vm, s, i->d, pos, false, &out, K[i->c].p, (KpObj *)rec)) return -1;
    /* (d 32: see GETFIELD) */
    if (UNLIKELY((i->d & 32) && !KP_IS_PLAIN(out))) fr->refd = true;
    return set_slot(vm, &R[i->a], out) ? 1 : -1;
}

static bool index_slot(KpVM *vm, KpValue obj, KpValue idx, KpValue **slot, KpValue *strbyte, bool create,
                       KpValue *newval) {
    KpValue c = kp_deref(obj);
    idx = kp_deref(idx);
    if (c.tag == KP_T_LIST) {
        KpList *l = c.p;
        if (!is_intlike(idx.tag)) return kp_vm_error(vm, "a list index must be an Int, not %s", kp_value_type_name(vm, idx));
        if (idx.i < 0 || (uint64_t)idx.i >= l->len)
            return kp_vm_error(vm, "index %" PRId64 " out of range for a list of length %u", idx.i, l->len);
        *slot = &l->items[idx.i];
        return true;
    }
    if (c.tag == KP_T_MAP) {
        KpMap *m = c.p;
        KpMapEntry *e = kp_map_find(m, idx);
        if (!e) {
            if (create) {
                if (m->h.lock) return kp_vm_error(vm, "cannot add a key to a map while a for loop is iterating over it");
                if (m->ktype) {
                    const char *why;
                    if (!kp_type_coerce(vm, m->ktype, &idx, &why))
                        return kp_vm_error(vm, "the map's keys are %s, but the key is %s", m->ktype->name, kp_value_type_name(vm, idx));
                }
                KpValue k;
                if (kp_clone(vm, idx, &k) && kp_map_put(vm, m, k, *newval)) {
                    *newval = kp_unset();
                    *slot = NULL;
                    return true;
                }
                return false;
            }
            return kp_vm_error(vm, "key %s not found in the map", kp_tostring_msg(vm, idx, true));
        }
        *slot = &e->val;
        return true;
    }
    if (c.tag == KP_T_HEAP) {
        KpHeapAlloc *h = c.p;
        if (!is_intlike(idx.tag)) return kp_vm_error(vm, "a HeapAllocation index must be an Int");
        if (idx.i < 0 || idx.i >= h->size)
            return kp_vm_error(vm, "index %" PRId64 " out of range for a HeapAllocation of %" PRId64 " bytes", idx.i, h->size);
        if (create) {
            KpValue v = kp_deref(*newval);
            if (!kp_heap_writable(vm, h)) return false;
            if (!is_intlike(v.tag)) return kp_vm_error(vm, "a byte is an Int from 0 to 255, not %s", kp_a(kp_value_type_name(vm, v)));
            if (v.i < 0 || v.i > 255) return kp_vm_error(vm, "a byte is an Int from 0 to 255, not %" PRId64, v.i);
            h->data[idx.i] = (unsigned char)v.i;
            *newval = kp_unset();
            *slot = NULL;
            return true;
        }
        if (!strbyte) return kp_vm_error(vm, "cannot take a reference to a byte of a HeapAllocation");
        *strbyte = kp_int(h->data[idx.i]); /* an Int 0..255, like s[i] (binary data reads as Int) */
        *slot = NULL;
        return true;
    }
    if (c.tag == KP_T_BIN && ((KpBinObj *)c.p)->bkind == KP_BK_VIEW) { /* v[i, j] (vm/binary.h) */
        *slot = NULL;
        if (create) return kp_view_index(vm, c.p, idx, NULL, newval);
        if (!strbyte) return kp_vm_error(vm, "cannot take a reference to an element of a View");
        return kp_view_index(vm, c.p, idx, strbyte, NULL);
    }
    if (c.tag == KP_T_STR && strbyte) {
        KpString *s = c.p;
        if (!is_intlike(idx.tag)) return kp_vm_error(vm, "a string index must be an Int");
        if (idx.i < 0 || (uint64_t)idx.i >= s->len)
            return kp_vm_error(vm, "index %" PRId64 " out of range for a string of %u bytes", idx.i, s->len);
        *strbyte = kp_int((unsigned char)s->data[idx.i]);
        *slot = NULL;
        return true;
    }
    if (c.tag == KP_T_MOVED || c.tag == KP_T_UNSET) return bad_value(vm, c, NULL);
    return kp_vm_error(vm, "cannot index %s", kp_a(kp_value_type_name(vm, c)));
}

/* Default value of a type (`x : T` with no initializer). */
static bool default_value(KpVM *vm, KpType *t, KpValue *out) {
    switch (t->kind) {
    case KP_TK_SCALAR:
        switch (t->tag) {
        case KP_T_INT: *out = kp_int(0); return true;
        case KP_T_FLOAT: *out = kp_float(0); return true;
        case KP_T_BOOL: *out = kp_bool(false); return true;
        case KP_T_UNIT: *out = kp_unit(); return true;
        case KP_T_STR: *out = kp_ptr(KP_T_STR, vm->empty_str); return true;
        default: if (KP_IS_SIZED_INT(t->tag)) { *out = kp_int(0); out->tag = t->tag; return true; }
        }
        break;
    case KP_TK_RECORD: {
        KpRecord *r = kp_record_new(vm, t);
        if (!r) return false;
        for (uint32_t i = 0; i < t->nfields; i++) {
            if (t->defaults[i].tag == KP_T_UNSET) continue;
            if (!kp_clone(vm, t->defaults[i], &r->f[i])) { kp_drop(vm, kp_ptr(KP_T_RECORD, r)); return false; }
        }
        *out = kp_ptr(KP_T_RECORD, r);
        return true;
    }
    case KP_TK_LIST: {
        KpList *l = kp_list_new(vm, 0);
        if (!l) return false;
        l->elem = t->elem;
        *out = kp_ptr(KP_T_LIST, l);
        return true;
    }
    case KP_TK_MAP: {
        KpMap *m = kp_map_new(vm);
        if (!m) return false;
        m->ktype = t->key;
        m->vtype = t->elem;
        *out = kp_ptr(KP_T_MAP, m);
        return true;
    }
    default: break;
    }
    return kp_vm_error(vm, "%s has no default value; give one", t->name);
}

static bool new_record(KpVM *vm, KpType *t, KpValue *args, KpValue *out) {
    KpRecord *r = kp_record_new(vm, t);
    if (!r) return false;
    for (uint32_t i = 0; i < t->nfields; i++) {
        KpValue v = args[i];
        args[i] = kp_unset();
        if (v.tag == KP_T_UNSET) {
            if (t->defaults[i].tag != KP_T_UNSET && !kp_clone(vm, t->defaults[i], &v)) goto fail;
        } else if (t->ftypes[i]) {
            const char *why;
            if (v.tag == KP_T_REF && (v.flags & KP_VF_PLACE)) {
                KpValue x;
                if (!take_from(vm, ref_slot_err(vm, v), &x, 0, (v.flags & KP_VF_ELEM) != 0, NULL)) goto fail;
                v = x;
            }
            if (v.tag == KP_T_REF && t->ftypes[i]->kind == KP_TK_SCALAR) {
                /* a reference (a `&String` parameter passed on) into a
                 * String or scalar field: the value is copied */
                KpValue d = kp_deref(v);
                if (d.tag == KP_T_STR || KP_IS_PLAIN(d)) {
                    if (!kp_clone(vm, d, &v)) goto fail;
                }
            }
            if (!kp_type_coerce(vm, t->ftypes[i], &v, &why)) {
                kp_vm_error(vm, "field '%s' of %s is %s, but the value is %s%s%s", t->fnames[i], t->name,
                            t->ftypes[i]->name, kp_value_type_name(vm, v), why ? ": " : "", why ? why : "");
                kp_drop(vm, v);
                goto fail;
            }
        }
        r->f[i] = v;
    }
    *out = kp_ptr(KP_T_RECORD, r);
    return true;
fail:
    kp_drop(vm, kp_ptr(KP_T_RECORD, r));
    return false;
}

/* ------------------------------------------------------------ calls */

static bool clear_regs(KpVM *vm, KpValue *from, KpValue *to);

/* T(args) where T is a record type known only at run time. */
static bool construct_dynamic(KpVM *vm, KpType *t, KpValue *args, int nargs, KpCallDesc *desc, KpValue *out) {
    KpValue tmp[256];
    int npos = nargs - (desc ? desc->nnamed : 0);
    if (t->nfields > 256) return kp_vm_error(vm, "too many fields");
    if (npos > (int)t->nfields) { clear_regs(vm, args, args + nargs); return kp_vm_error(vm, "too many values for %s (%u fields)", t->name, t->nfields); }
    for (uint32_t i = 0; i < t->nfields; i++) tmp[i] = kp_unset();
    for (int j = 0; j < nargs; j++) {
        int k = j;
        if (j >= npos) {
            k = -1;
            for (uint32_t q = 0; q < t->nfields; q++) if (t->fnames[q] == desc->names[j - npos]) k = (int)q;
            if (k < 0) { clear_regs(vm, args, args + nargs); return kp_vm_error(vm, "%s has no field '%s'", t->name, desc->names[j - npos]); }
        }
        KpValue v = args[j];
        args[j] = kp_unset();
        if (v.tag == KP_T_REF && (v.flags & KP_VF_PLACE)) {
            KpValue x;
            if (!take_from(vm, ref_slot_err(vm, v), &x, 0, (v.flags & KP_VF_ELEM) != 0, NULL)) { clear_regs(vm, tmp, tmp + t->nfields); clear_regs(vm, args, args + nargs); return false; }
            v = x;
        }
        tmp[k] = v;
    }
    return new_record(vm, t, tmp, out);
}

static bool param_accepts(KpVM *vm, const KpParam *p, KpValue arg, int *score) {
    KpValue v = kp_deref(arg);
    if (v.tag == KP_T_UNSET || v.tag == KP_T_MOVED) return false;
    if (p->mode == KP_PM_MUTREF && arg.tag == KP_T_REF && !(arg.flags & (KP_VF_MUT | KP_VF_PLACE))) return false;
    /* overloads that differ only in a parameter's mode (parallel_for($&xs, f)
     * and parallel_for(~&xs, f)): a `$&` borrow picks the `$&` one, a
     * value moved in the by-value one */
    if (p->mode == KP_PM_MUTREF && arg.tag == KP_T_REF && (arg.flags & KP_VF_MUT)) *score += 1;
    else if (p->mode == KP_PM_VALUE && arg.tag != KP_T_REF && KP_NEEDS_DROP(arg)) *score += 1;
    if (!p->type) { *score += 1; return true; }
    if (p->type->kind == KP_TK_ABSTRACT) { *score += 2; return true; }
    if (p->type->kind == KP_TK_SCALAR && KP_IS_SIZED_INT(p->type->tag) && v.tag == KP_T_INT) { *score += 2; return true; }
    if (p->type->kind == KP_TK_SCALAR && p->type->tag == KP_T_FLOAT && v.tag == KP_T_INT) { *score += 1; return true; }
    if (p->type->kind == KP_TK_SCALAR && p->type->tag == KP_T_INT && KP_IS_SIZED_INT(v.tag)) { *score += 1; return true; }
    if (p->type->kind == KP_TK_REF) {
        if (!kp_type_matches(vm, p->type, arg)) return false;
        *score += 3;
        return true;
    }
    if (!kp_type_matches(vm, p->type, v)) return false;
    *score += 3;
    return true;
}

static void describe_args(KpVM *vm, KpValue *args, int nargs, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < nargs && len < n - 32; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", kp_value_type_name(vm, args[i]));
}

/* Does an overload declared to return `ret` give the `expect`ed type?  A
 * generic List or HashMap output serves any instance. */
static bool ret_compatible(const KpType *ret, const KpType *expect) {
    if (!ret || !expect) return false;
    if (ret == expect) return true;
    return (ret->kind == KP_TK_LIST || ret->kind == KP_TK_MAP) && ret->kind == expect->kind && !ret->elem && !ret->key;
}

/* The value of a function literal that captures is a record of its
 * closure type (compiler/types.c kp_types_declare_literal): is v one? */
static inline KpRecord *as_closure(KpValue v) {
    return v.tag == KP_T_RECORD && ((KpRecord *)v.p)->type->closure ? v.p : NULL;
}

/* A call of function literal value `cr` with nargs arguments at args: its
 * captures are appended as its last parameters' arguments — the
 * reference a borrowed capture holds (checked here: the variable may have
 * gone out of scope), a $& reference to the value a taken one owns.
 * Returns 0 after raising an error; 1 when every capture is bound as it
 * is: its referent is live, not moved, and of its parameter's type (what
 * bind_one would check; the types pass made the parameter the variable's
 * type, so this holds but for a variable moved away at run time), so the
 * caller binds only the first nargs arguments; 2 when the captures must go
 * through bind_args with the others (its checks raise the errors). */
static int __attribute__((noinline)) closure_args(KpVM *vm, KpRecord *cr, KpValue *args, int *pnargs, KpCallDesc *desc) {
    KpType *t = cr->type;
    KpOverload *ov = t->closure;
    int nargs = *pnargs, np = ov->nparams - ov->literal;
    if (desc && desc->nnamed)
        return kp_vm_error(vm, "'%s' is a function literal: it takes its arguments by position", ov->func->name);
    if (nargs != np)
        return kp_vm_error(vm, "'%s' takes %d argument%s, but %d were given", ov->func->name, np, np == 1 ? "" : "s", nargs);
    if (args + nargs + t->nfields + 1 >= vm->stack_end) return kp_vm_error(vm, "stack overflow (%d nested calls)", vm->nframes);
    int ready = 1;
    for (uint32_t k = 0; k < t->nfields; k++) {
        KpValue *slot = &cr->f[k];
        const KpParam *pp = &ov->params[np + (int)k];
        KpValue *target;
        if (k < 64 && (t->closure_take >> k & 1)) {
            KpValue r = kp_make_ref(vm, slot, &cr->h, KP_VF_MUT);
            args[nargs + (int)k] = r;
            if (r.tag != KP_T_REF) { ready = 2; continue; } /* (bind_one reports it) */
            target = slot;
        } else {
            if (slot->tag == KP_T_REF && !kp_ref_ok_in(vm, *slot))
                return kp_vm_error(vm, "'%s' borrows '%s', which went out of scope: a function literal that borrows a "
                                   "variable may not outlive it", ov->func->name, t->fnames[k]);
            args[nargs + (int)k] = *slot;
            if (slot->tag != KP_T_REF || (slot->flags & KP_VF_PLACE) ||
                (pp->mode == KP_PM_MUTREF && !(slot->flags & KP_VF_MUT))) { ready = 2; continue; }
            target = slot->p;
        }
        /* bind_one's checks of a reference passed to a & or $& parameter */
        uint8_t tag = target->tag;
        if (tag == KP_T_REF || tag == KP_T_MOVED || tag == KP_T_UNSET) ready = 2;
        else if (!pp->type || tag == pp->fast_tag) continue;
        else if (pp->fast_tag != 255 || !kp_type_matches(vm, pp->type, *target)) ready = 2;
    }
    *pnargs = nargs + (int)t->nfields;
    return ready;
}

/* Is reference v, passed to the & or $& parameter pp, bound as it is:
 * not an implicit borrow, live, mutable for $&, and to a value of pp's
 * type (a scalar's exact tag, a record of pp's record type; for an
 * untyped pp any value)?  Exactly when bind_one would leave it unchanged
 * and raise nothing; false sends it there. */
static inline __attribute__((always_inline)) bool ref_arg_ready(const KpVM *vm, const KpParam *pp, KpValue v) {
    if (v.tag != KP_T_REF || (v.flags & KP_VF_PLACE) || !kp_ref_ok_in(vm, v)) return false;
    if (pp->mode == KP_PM_MUTREF && !(v.flags & KP_VF_MUT)) return false;
    const KpValue *target = v.p;
    if (target->tag == pp->fast_tag && target->tag) return true; /* (0: UNSET, and an untyped parameter) */
    if (!pp->type) return target->tag != KP_T_REF && target->tag != KP_T_MOVED && target->tag != KP_T_UNSET;
    return pp->type->kind == KP_TK_RECORD && target->tag == KP_T_RECORD && ((const KpRecord *)target->p)->type == pp->type;
}

/* A by-value argument bound without bind_one where its tags decide: a
 * value of the parameter's exact scalar type, a record of its record
 * type (of any type for an untyped parameter), or the implicit borrow of
 * a place holding one, which is copied (a scalar) or moved out (a record:
 * MOVED at `pos` left behind, bind_one's take_from; not from a list or
 * map element, and not while ownership is traced).  False leaves *arg as
 * it was, for bind_one. */
static inline __attribute__((always_inline)) bool value_arg_fast(const KpVM *vm, const KpParam *pp, KpValue *arg,
                                                                  uint32_t pos) {
    KpValue r = *arg;
    if (r.tag == pp->fast_tag) return true;
    if (r.tag == KP_T_RECORD) return !pp->type || ((const KpRecord *)r.p)->type == pp->type;
    if (r.tag != KP_T_REF || !(r.flags & KP_VF_PLACE)) return false;
    KpValue *pv = r.p;
    if (pp->fast_tag && pp->fast_tag != 255) { /* a scalar type */
        if (pv->tag != pp->fast_tag || !KP_IS_PLAIN(*pv)) return false;
        *arg = *pv;
        return true;
    }
    if (!kp_ref_ok_in(vm, r)) return false;
    if (!pp->type && KP_IS_PLAIN(*pv)) {
        *arg = *pv;
        return true;
    }
    if (pv->tag != KP_T_RECORD || (r.flags & KP_VF_ELEM) || vm->trace_own) return false;
    if (pp->type && ((const KpRecord *)pv->p)->type != pp->type) return false;
    *arg = *pv;
    pv->tag = KP_T_MOVED;
    pv->aux = pos;
    pv->p = NULL;
    return true;
}

/* CALL's fast path from argument j on: for a & or $& parameter, a
 * reference bound as it is (ref_arg_ready), or an implicit borrow of a
 * place, which is the reference that place holds, or else the reference
 * to the place (bind_one's two cases); for a by-value parameter,
 * value_arg_fast.  Returns the index of the first argument it could not
 * bind (n when all are), which sends the call to bind_args; the
 * arguments before it are bound. */
static int __attribute__((noinline)) args_bind_fast(const KpVM *vm, const KpOverload *ov, KpValue *args, int j, int n,
                                                    uint32_t pos) {
    for (; j < n; j++) {
        const KpParam *pp = &ov->params[j];
        KpValue r = args[j];
        if (pp->mode == KP_PM_VALUE) {
            if (!value_arg_fast(vm, pp, &args[j], pos)) break;
            continue;
        }
        if (r.tag == KP_T_REF && (r.flags & KP_VF_PLACE)) {
            if (!kp_ref_ok_in(vm, r)) break;
            const KpValue *src = r.p;
            if (src->tag == KP_T_REF) r = *src;
            else r.flags = (uint8_t)((r.flags & (KP_VF_ELEM | KP_VF_HEAP | KP_VF_STATIC | KP_VF_BOXED)) |
                                     (pp->mode == KP_PM_MUTREF ? KP_VF_MUT : 0));
        }
        if (!ref_arg_ready(vm, pp, r)) break;
        args[j] = r;
    }
    return j;
}

/* closure_args' common case, inline in CALL: every capture borrowed, its
 * reference live and to a value of its parameter's type (a scalar's exact
 * tag, or a record of the parameter's record type; an untyped parameter:
 * any value); a literal that took a value makes a reference to it
 * (kp_make_ref), in closure_args.  Then the captures are appended and true returned; false
 * when closure_args must decide (nothing changed but the slots above the
 * arguments, which it writes again). */
static inline __attribute__((always_inline)) bool closure_args_borrowed(KpVM *vm, KpRecord *cr, KpValue *args, int nargs) {
    const KpType *t = cr->type;
    const KpOverload *ov = t->closure;
    int np = ov->nparams - ov->literal;
    if (t->closure_take || nargs != np || args + nargs + t->nfields + 1 >= vm->stack_end) return false;
    const KpParam *pp = ov->params + np;
    for (uint32_t k = 0; k < t->nfields; k++, pp++) {
        KpValue v = cr->f[k];
        if (!ref_arg_ready(vm, pp, v)) return false;
        args[nargs + (int)k] = v;
    }
    return true;
}

static KpOverload *select_overload(KpVM *vm, KpFunc *f, KpValue *args, int nargs, KpCallDesc *desc) {
    int npos = nargs - (desc ? desc->nnamed : 0);
    KpOverload *best = NULL;
    int best_score = -1, ties = 0;
    bool some_ret = false;
    if (desc && desc->expect)
        for (uint32_t i = 0; i < f->n; i++)
            if (ret_compatible(f->ovs[i]->ret, desc->expect)) some_ret = true;
    for (int pass = some_ret ? 0 : 1; pass < 2 && !best; pass++) {
        if (pass == 1 && some_ret) break;
        for (uint32_t i = 0; i < f->n; i++) {
            KpOverload *ov = f->ovs[i];
            if (pass == 0 && !ret_compatible(ov->ret, desc->expect)) continue;
            if (pass == 1 && ov->by_result) continue; /* only chosen by its output type */
            if (!ov->variadic && nargs > ov->nparams) continue;
            int score = 0;
            bool ok = true;
            for (int j = 0; j < npos && ok; j++) {
                const KpParam *p = j < ov->nparams ? &ov->params[j] : NULL;
                if (!p) { score += 1; continue; } /* variadic */
                ok = param_accepts(vm, p, args[j], &score);
            }
            for (int j = npos; j < nargs && ok; j++) {
                const char *nm = desc->names[j - npos];
                int k = -1;
                for (int q = 0; q < ov->nparams; q++) if (ov->params[q].name == nm) k = q;
                ok = k >= npos && param_accepts(vm, &ov->params[k], args[j], &score);
            }
            /* missing parameters need defaults */
            for (int q = npos; q < ov->nparams && ok; q++) {
                bool given = false;
                for (int j = npos; j < nargs; j++) if (desc->names[j - npos] == ov->params[q].name) given = true;
                if (!given && ov->params[q].def.tag == KP_T_UNSET) ok = false;
            }
            if (!ok) continue;
            if (score > best_score) { best = ov; best_score = score; ties = 0; }
            else if (score == best_score) ties++;
        }
    }
    char buf[512];
    if (!best) {
        describe_args(vm, args, nargs, buf, sizeof buf);
        if (some_ret)
            kp_vm_error(vm, "no overload of '%s' returning %s accepts (%s)", f->name, desc->expect->name, buf);
        else
            kp_vm_error(vm, "no overload of '%s' accepts (%s)", f->name, buf);
        return NULL;
    }
    if (ties) {
        describe_args(vm, args, nargs, buf, sizeof buf);
        kp_vm_error(vm, "ambiguous call to '%s' with (%s): several overloads match equally", f->name, buf);
        return NULL;
    }
    return best;
}

/* The shape of an argument, as far as select_overload looks at it (its
 * tag, its reference flags and depth, the tag and record type it refers
 * to), in two words; false when the choice may depend on more than that
 * (a list's elements, an allocator's kind, a dead reference...): such a
 * call is not cached. */
static inline bool arg_shape(const KpVM *vm, KpValue a, uint64_t out[2]) {
    const KpValue *v = &a;
    int depth = 0;
    while (v->tag == KP_T_REF) {
        if (depth == 2 || !ref_live(vm, *v)) return false;
        v = v->p;
        depth++;
    }
    const void *type = NULL;
    if (v->tag == KP_T_RECORD) type = ((const KpRecord *)v->p)->type;
    else if (!KP_IS_PLAIN(*v) && v->tag != KP_T_STR) return false;
    out[0] = (uint64_t)a.tag | (uint64_t)(a.flags & (KP_VF_MUT | KP_VF_PLACE)) << 8 | (uint64_t)depth << 16 |
             (uint64_t)v->tag << 24;
    out[1] = (uint64_t)(uintptr_t)type;
    return true;
}

/* select_overload for CALL, through f's dispatch cache when the call has
 * at most four positional arguments of cacheable shapes (arg_shape); the
 * output type the call asks for is part of the key.
 * Parallel workers only read the cache: it is filled on the main thread,
 * while no worker runs. */
static KpOverload *select_cached(KpVM *vm, KpFunc *f, KpValue *args, int nargs, KpCallDesc *desc) {
    uint64_t sh[4][2];
    bool cacheable = nargs <= 4 && (!desc || !desc->nnamed);
    const KpType *expect = desc ? desc->expect : NULL;
    uint64_t hash = (uint64_t)nargs ^ (uint64_t)(uintptr_t)expect;
    for (int j = 0; j < nargs && cacheable; j++) {
        cacheable = arg_shape(vm, args[j], sh[j]);
        hash = (hash ^ sh[j][0] ^ (sh[j][1] >> 4)) * 0x9e3779b97f4a7c15ull;
    }
    KpDispatchCache *dc = f->dispatch;
    if (cacheable && dc && dc->n == f->n) {
        for (int w = 0; w < KP_DISPATCH_WAYS; w++) {
            if (dc->way[w].hash != hash || !dc->way[w].ov || dc->way[w].nargs != nargs || dc->way[w].expect != expect)
                continue;
            int j = 0;
            while (j < nargs && dc->way[w].shape[j][0] == sh[j][0] && dc->way[w].shape[j][1] == sh[j][1]) j++;
            if (j == nargs) return dc->way[w].ov;
        }
    }
    KpOverload *ov = select_overload(vm, f, args, nargs, desc);
    if (!ov || !cacheable || vm->par || vm->lib_loading) return ov;
    if (!dc) {
        /* (from the lasting lib_arena: the meta arena of a run is scratch,
         * api/driver.c run_in_arena) */
        dc = kp_arena_alloc(&vm->lib_arena, sizeof *dc, 16);
        if (!dc) return ov; /* no cache: still a choice */
        memset(dc, 0, sizeof *dc);
        f->dispatch = dc;
    }
    if (dc->n != f->n) {
        memset(dc, 0, sizeof *dc);
        dc->n = f->n;
    }
    uint32_t w = dc->next++ % KP_DISPATCH_WAYS;
    dc->way[w].ov = ov;
    dc->way[w].hash = hash;
    dc->way[w].expect = expect;
    dc->way[w].nargs = nargs;
    memcpy(dc->way[w].shape, sh, sizeof(uint64_t) * 2 * (size_t)nargs);
    return ov;
}

/* Does & or $& record parameter p (p->type a record type) take live
 * reference r, which is no implicit borrow, as it is: r refers to a record
 * of p's type, and is mutable if p is $&?  (bind_one's common case, also
 * tested by bind_bound_args before it calls bind_one.) */
static inline bool record_ref_fits(const KpParam *p, KpValue r) {
    const KpValue *t = r.p;
    return (p->mode != KP_PM_MUTREF || (r.flags & KP_VF_MUT)) && t->tag == KP_T_RECORD &&
           ((const KpRecord *)t->p)->type == p->type;
}

/* Binds one argument slot to parameter p (mode and type). */
static bool bind_one(KpVM *vm, KpFunc *f, int idx, const KpParam *p, KpValue *slot, uint32_t pos) {
    KpValue v = *slot;
    const char *pname = p->name ? p->name : "_";
    if (p->mode == KP_PM_VALUE) {
        if (v.tag == KP_T_REF) {
            if (v.flags & KP_VF_PLACE) {
                KpValue *src = ref_slot_err(vm, v);
                if (!src) return false;
                KpValue x = *src;
                if (x.tag == KP_T_REF && !(p->type && p->type->kind == KP_TK_REF)) {
                    /* a reference variable passed by value: copy scalars through it */
                    KpValue t = kp_deref(x);
                    if (KP_IS_MOVABLE(t))
                        return kp_vm_error(vm, "argument %d of '%s' (%s) takes %s by value, but a reference was passed; pass clone(...) to copy it",
                                           idx + 1, f->name, pname, kp_a(kp_value_type_name(vm, t)));
                    if (t.tag == KP_T_STR) kp_str_incref(t.p);
                    x = t;
                } else if (!take_from(vm, src, &x, pos, (v.flags & KP_VF_ELEM) != 0, NULL)) {
                    return false;
                }
                *slot = x;
            } else if (!(p->type && p->type->kind == KP_TK_REF)) {
                KpValue t = kp_deref(v);
                if (KP_IS_MOVABLE(t))
                    return kp_vm_error(vm, "argument %d of '%s' (%s) takes %s by value, but a reference was passed; pass clone(...) to copy it",
                                       idx + 1, f->name, pname, kp_a(kp_value_type_name(vm, t)));
                if (t.tag == KP_T_STR) kp_str_incref(t.p);
                *slot = t;
            }
        }
        if (p->type) {
            const char *why;
            if (!kp_type_coerce(vm, p->type, slot, &why))
                return kp_vm_error(vm, "argument %d of '%s' (%s) must be %s, but it is %s%s%s", idx + 1, f->name, pname,
                                   p->type->name, kp_value_type_name(vm, *slot), why ? ": " : "", why ? why : "");
        }
        return true;
    }
    /* & and $& */
    if (v.tag == KP_T_REF && p->type && p->type->kind == KP_TK_RECORD && ref_live(vm, v)) {
        /* the common case first: a live reference to a record of the
         * parameter's type — given explicitly, or as the implicit borrow
         * of a place holding the record or a reference to it (what the
         * general code below does, without its rechecks) */
        KpValue r = v;
        if (v.flags & KP_VF_PLACE) {
            const KpValue *t = v.p;
            if (t->tag == KP_T_REF) {
                r = *t;
                if (!ref_live(vm, r)) goto general;
            } else {
                r.flags = (uint8_t)((v.flags & (KP_VF_ELEM | KP_VF_HEAP | KP_VF_STATIC | KP_VF_BOXED)) |
                                    (p->mode == KP_PM_MUTREF ? KP_VF_MUT : 0));
            }
        }
        if (record_ref_fits(p, r)) {
            *slot = r;
            return true;
        }
    }
general:
    if (v.tag == KP_T_REF) {
        if (v.flags & KP_VF_PLACE) {
            KpValue *src = ref_slot_err(vm, v);
            if (!src) return false;
            if (src->tag == KP_T_REF) {
                v = *src;
                if (p->mode == KP_PM_MUTREF && !(v.flags & KP_VF_MUT))
                    return kp_vm_error(vm, "argument %d of '%s' (%s) needs a mutable reference ($&), but a read-only one was passed", idx + 1, f->name, pname);
            } else {
                if (src->tag == KP_T_MOVED || src->tag == KP_T_UNSET) return bad_value(vm, *src, NULL);
                v.flags = (uint8_t)((v.flags & (KP_VF_ELEM | KP_VF_HEAP | KP_VF_STATIC | KP_VF_BOXED)) |
                                    (p->mode == KP_PM_MUTREF ? KP_VF_MUT : 0));
            }
        } else if (p->mode == KP_PM_MUTREF && !(v.flags & KP_VF_MUT)) {
            return kp_vm_error(vm, "argument %d of '%s' (%s) needs $&: a read-only reference (&) was passed", idx + 1, f->name, pname);
        }
        /* a reference whose referent is gone (kp_deref gives a dead
         * marker) or was moved away is reported where it is passed */
        KpValue target = kp_deref(v);
        if (target.tag == KP_T_MOVED || (target.tag == KP_T_UNSET && v.tag == KP_T_REF)) return bad_value(vm, target, NULL);
        *slot = v;
    }
    if (p->type) {
        KpValue t = kp_deref(*slot);
        if (!kp_type_matches(vm, p->type, t)) {
            if (slot->tag != KP_T_REF) { /* an owned temporary: allow coercion */
                const char *why;
                if (kp_type_coerce(vm, p->type, slot, &why)) return true;
            }
            return kp_vm_error(vm, "argument %d of '%s' (%s) must be %s%s, but it is %s", idx + 1, f->name, pname,
                               p->mode == KP_PM_MUTREF ? "$&" : "&", p->type->name, kp_value_type_name(vm, t));
        }
    }
    return true;
}

/* Reorders named arguments, fills defaults, and binds every argument.
 * On return the args occupy slots 0..nparams-1 (or nargs for variadics). */
static bool bind_args(KpVM *vm, KpOverload *ov, KpValue *args, int *pnargs, KpCallDesc *desc, uint32_t pos) {
    int nargs = *pnargs;
    KpFunc *f = ov->func;
    if (desc && desc->nnamed) {
        int npos = nargs - desc->nnamed;
        KpValue tmp[256];
        for (int q = 0; q < ov->nparams; q++) tmp[q] = kp_unset();
        for (int j = 0; j < npos; j++) tmp[j] = args[j];
        for (int j = npos; j < nargs; j++) {
            const char *nm = desc->names[j - npos];
            int k = -1;
            for (int q = 0; q < ov->nparams; q++) if (ov->params[q].name == nm) k = q;
            if (k < 0 || k < npos) {
                /* leave args in place: unwinding drops them */
                return kp_vm_error(vm, "'%s' has no parameter '%s'%s", f->name, nm, k >= 0 ? " left to name (it was given by position)" : "");
            }
            tmp[k] = args[j];
        }
        for (int j = 0; j < nargs; j++) args[j] = kp_unset();
        for (int q = 0; q < ov->nparams; q++) args[q] = tmp[q];
        nargs = ov->nparams;
    }
    if (nargs < ov->nparams) {
        for (int q = nargs; q < ov->nparams; q++) args[q] = kp_unset();
        nargs = ov->nparams;
    }
    if (nargs > ov->nparams && !ov->variadic)
        return kp_vm_error(vm, "'%s' takes %d argument%s, but %d were given", f->name, ov->nparams, ov->nparams == 1 ? "" : "s", nargs);
    for (int q = 0; q < ov->nparams; q++) {
        if (args[q].tag == KP_T_UNSET) {
            if (ov->params[q].def.tag == KP_T_UNSET)
                return kp_vm_error(vm, "missing argument %d of '%s' (%s)", q + 1, f->name,
                                   ov->params[q].name ? ov->params[q].name : "_");
            if (!kp_clone(vm, ov->params[q].def, &args[q])) return false;
        }
        const KpParam *p = &ov->params[q];
        if (args[q].tag == p->fast_tag && p->mode == KP_PM_VALUE) continue;
        if (!bind_one(vm, f, q, p, &args[q], pos)) return false;
    }
    if (ov->variadic) {
        KpParam vp = {0};
        vp.mode = ov->vmode;
        for (int q = ov->nparams; q < nargs; q++)
            if (!bind_one(vm, f, q, &vp, &args[q], pos)) return false;
    }
    *pnargs = nargs;
    return true;
}

/* CALLS: binds argument q of a call bound at compile time to `ov` (the
 * arguments the types pass could not prove). */
static bool __attribute__((noinline)) bind_bound_arg(KpVM *vm, KpOverload *ov, int q, KpValue *slot, uint32_t pos) {
    KpParam vp = {0};
    const KpParam *pp = &vp;
    if (q < ov->nparams) pp = &ov->params[q];
    else vp.mode = ov->vmode;
    return bind_one(vm, ov->func, q, pp, slot, pos);
}

/* CALLS: do the arguments have tags desc->fmask lets pass as they are
 * (desc->fast is 1, so nargs <= 4)? */
static inline bool call_tags_ok(const KpCallDesc *desc, const KpValue *args, int nargs) {
    for (int q = 0; q < nargs; q++)
        if (!((__atomic_load_n(&desc->fmask[q], __ATOMIC_RELAXED) >> args[q].tag) & 1)) return false;
    return true;
}

/* CALLS: binds the arguments in desc->check (the first run also works out
 * desc->fast and desc->ftag). */
static bool __attribute__((noinline)) bind_bound_args(KpVM *vm, KpCallDesc *desc, KpValue *args, int nargs, uint32_t pos) {
    KpOverload *ov = desc->ov;
    uint64_t chk = desc->check;
    if (!__atomic_load_n(&desc->fast, __ATOMIC_ACQUIRE)) {
        /* (parallel workers may run this at once: each computes the same
         * masks, published before `fast`) */
        uint8_t fast = nargs <= 4 ? 1 : 2;
        uint32_t mask[4] = {0, 0, 0, 0};
        for (int q = 0; q < nargs && fast == 1; q++) {
            mask[q] = ~(uint32_t)0;
            if (!((chk >> q) & 1)) continue;
            const KpParam *pp = q < ov->nparams ? &ov->params[q] : NULL;
            if (!pp || pp->mode != KP_PM_VALUE) fast = 2;
            else if (!pp->type) mask[q] = ~((uint32_t)1 << KP_T_REF); /* see below: only a reference is bound */
            else if (pp->fast_tag == 0 || pp->fast_tag >= KP_T_MOVED) fast = 2;
            else mask[q] = (uint32_t)1 << pp->fast_tag;
        }
        for (int q = 0; q < 4 && q < nargs && fast == 1; q++) __atomic_store_n(&desc->fmask[q], mask[q], __ATOMIC_RELAXED);
        __atomic_store_n(&desc->fast, fast, __ATOMIC_RELEASE);
    }
    /* the arguments of the set bits (bit 63 also stands for the rest) */
    uint64_t m = nargs < 64 ? chk & (((uint64_t)1 << nargs) - 1) : chk & ~((uint64_t)1 << 63);
    int np = ov->nparams;
    for (; m; m &= m - 1) {
        int q = __builtin_ctzll(m);
        /* a by-value argument its tags decide (an exact scalar, a record
         * of the parameter's type, a place holding one) */
        if (q < np && ov->params[q].mode == KP_PM_VALUE && value_arg_fast(vm, &ov->params[q], &args[q], pos)) continue;
        /* an explicit live reference a & or $& parameter takes as it is
         * (`f(&e.next)` of an Any field, `len(s.xs)`): nothing to bind */
        if (q < np && ov->params[q].mode != KP_PM_VALUE && ref_arg_ready(vm, &ov->params[q], args[q])) continue;
        /* an untyped by-value parameter (a host function's): the binding
         * has nothing to do unless a reference was passed */
        if (q < np && !ov->params[q].type && ov->params[q].mode == KP_PM_VALUE && args[q].tag != KP_T_REF) continue;
        if (!bind_bound_arg(vm, ov, q, &args[q], pos)) return false;
    }
    for (int q = 63; q < nargs && ((chk >> 63) & 1); q++) {
        if (q < np && args[q].tag == ov->params[q].fast_tag && ov->params[q].mode == KP_PM_VALUE) continue;
        /* an untyped by-value parameter (a host function's): the binding
         * has nothing to do unless a reference was passed */
        if (q < np && !ov->params[q].type && ov->params[q].mode == KP_PM_VALUE && args[q].tag != KP_T_REF) continue;
        if (!bind_bound_arg(vm, ov, q, &args[q], pos)) return false;
    }
    return true;
}

static bool clear_regs(KpVM *vm, KpValue *from, KpValue *to) {
    bool ok = true;
    while (to > from) {
        --to;
        if (to >= vm->stack && to < vm->stack_end) vm->reg_gen[to - vm->stack]++;
        if (KP_NEEDS_DROP(*to)) {
            KpValue v = *to;
            if (UNLIKELY(vm->trace_own) && TRACED(v)) kp_vm_trace_own(vm, v.tag == KP_T_BOX ? "release" : "drop", v, to, 0);
            *to = kp_unset();
            if (!kp_drop(vm, v)) ok = false;
        } else {
            *to = kp_unset();
        }
    }
    return ok;
}

/* ------------------------------------------------------------ returns */

/* The bitwise instructions' slow path: an operand that is not an Int
 * (a reference to one is read through), or a shift count outside 0..63.
 * Computes *r and returns true, or raises the error. */
static const char *bit_sym(int op) {
    switch (op) {
    case KP_BC_BAND: return "land";
    case KP_BC_BOR: return "lor";
    case KP_BC_BXOR: return "lxor";
    case KP_BC_SHL: return "lsl";
    case KP_BC_SHR: return "lsr";
    case KP_BC_ASR: return "asr";
    default: return "lnot";
    }
}

static bool bit_calc(KpVM *vm, int op, int64_t a, int64_t b, int64_t *r) {
    if ((op == KP_BC_SHL || op == KP_BC_SHR || op == KP_BC_ASR) && (b < 0 || b > 63))
        return kp_vm_error(vm, "shift count %" PRId64 " is out of range 0..63 (in %s)", b, bit_sym(op));
    switch (op) {
    case KP_BC_BAND: *r = a & b; break;
    case KP_BC_BOR: *r = a | b; break;
    case KP_BC_BXOR: *r = a ^ b; break;
    case KP_BC_SHL: *r = (int64_t)((uint64_t)a << b); break;
    case KP_BC_SHR: *r = (int64_t)((uint64_t)a >> b); break;
    case KP_BC_ASR: *r = a >> b; break; /* GCC and Clang: arithmetic */
    default: *r = ~a; break;
    }
    return true;
}

static bool bit_slow(KpVM *vm, int op, KpValue *dst, KpValue a, KpValue b) {
    a = kp_deref(a);
    b = kp_deref(b);
    if (a.tag == KP_T_MOVED || a.tag == KP_T_UNSET) return bad_value(vm, a, NULL);
    if (op != KP_BC_BNOT && (b.tag == KP_T_MOVED || b.tag == KP_T_UNSET)) return bad_value(vm, b, NULL);
    if (a.tag != KP_T_INT || (op != KP_BC_BNOT && b.tag != KP_T_INT)) {
        if (op == KP_BC_BNOT) return kp_vm_error(vm, "'lnot' needs an Int, but the value is %s", kp_value_type_name(vm, a));
        const char *an = kp_value_type_name(vm, a);
        char abuf[128];
        snprintf(abuf, sizeof abuf, "%s", an ? an : "?");
        return kp_vm_error(vm, "'%s' needs Int operands, but they are %s and %s", bit_sym(op), abuf,
                           kp_value_type_name(vm, b));
    }
    int64_t r = 0;
    if (!bit_calc(vm, op, a.i, b.i, &r)) return false;
    return set_slot(vm, dst, kp_int(r));
}

/* The tags KP_IS_PLAIN accepts, as a mask over tags. */
#define PLAIN_TAGS ((((uint32_t)1 << KP_T_MOVED) - 1) & ~(uint32_t)1)
#define PLAIN_TAG(t) ((unsigned)(t) < 32 && ((PLAIN_TAGS >> (t)) & 1))

static bool plain_k(const KpValue *v) { return KP_IS_PLAIN(*v); }

/* kp_proto_finish's scan: which registers may hold something other than
 * a plain value.  A register is "tainted" when an instruction may write
 * anything but a plain value into it; the writes that only copy or
 * compute (MOVE, arithmetic) taint their target when an operand is
 * tainted; the scan repeats until nothing changes.  The parameters of
 * exact scalar types by value start plain (their binding made them so),
 * the others tainted.  An instruction the scan does not know, or a frame
 * too large for it, makes every register tainted.  Flow-insensitive: a
 * register is tainted if any write may taint it, wherever it is. */
static uint64_t scan_own_regs(const KpProto *p, const KpOverload *ov) {
    enum { MAXR = 256 };
    uint32_t n = p->nregs;
    if (n > MAXR || !ov || ov->variadic || ov->nparams > n) return ~(uint64_t)0;
    uint8_t t[MAXR];
    memset(t, 0, sizeof t);
    for (uint32_t q = 0; q < ov->nparams; q++) {
        const KpParam *pp = &ov->params[q];
        t[q] = !(pp->mode == KP_PM_VALUE && PLAIN_TAG(pp->fast_tag));
    }
    bool changed = true;
    while (changed) {
        changed = false;
#define REG_OK(r) ((uint32_t)(r) < n)
#define TAINT(r, cond)                                   \
    do {                                                 \
        if (!REG_OK(r)) return ~(uint64_t)0;             \
        if ((cond) && !t[(r)]) { t[(r)] = 1; changed = true; } \
    } while (0)
#define TR(r) (REG_OK(r) ? t[(r)] : 1)
#define TRK(x) (((x) & KP_RK_CONST) ? ((x) & 0x7fff) >= p->nk || !plain_k(&p->k[(x) & 0x7fff]) : TR(x))
        for (uint32_t pc = 0; pc < p->ncode; pc++) {
            const KpInstr *i = &p->code[pc];
            switch (i->op) {
            /* no register gets anything but UNSET, MOVED or a plain value */
            case KP_BC_NOP: case KP_BC_EXTRA: case KP_BC_JMP: case KP_BC_JMPF: case KP_BC_JMPT:
            case KP_BC_JLT: case KP_BC_JLE: case KP_BC_JEQ: case KP_BC_JNE:
            case KP_BC_JLTI: case KP_BC_JLEI: case KP_BC_JGTI: case KP_BC_JGEI: case KP_BC_JFUNIT: case KP_BC_GETFX: case KP_BC_SETFX:
            case KP_BC_RET: case KP_BC_RET0: case KP_BC_DROP: case KP_BC_SETFIELD:
            case KP_BC_SETINDEX: case KP_BC_SETG: case KP_BC_DEINIT:
            case KP_BC_LOADI: case KP_BC_LOADBOOL: case KP_BC_LOADUNIT:
            case KP_BC_EQ: case KP_BC_NE: case KP_BC_LT: case KP_BC_LE: case KP_BC_NOT:
            case KP_BC_BAND: case KP_BC_BOR: case KP_BC_BXOR: case KP_BC_SHL: case KP_BC_SHR:
            case KP_BC_ASR: case KP_BC_BNOT:
                break;
            case KP_BC_CHECK: { /* converts in place to the type K(b) */
                const KpType *ty = i->b < p->nk && p->k[i->b].tag == KP_T_TYPE ? p->k[i->b].p : NULL;
                TAINT(i->a, !ty || ty->kind != KP_TK_SCALAR || !PLAIN_TAG(ty->tag));
                break;
            }
            case KP_BC_LOADK: TAINT(i->a, (uint32_t)i->sbx >= p->nk || !plain_k(&p->k[i->sbx])); break;
            case KP_BC_MOVE: case KP_BC_COPY: case KP_BC_NEG: case KP_BC_ADDI: TAINT(i->a, TR(i->b)); break;
            case KP_BC_ADD: case KP_BC_SUB: case KP_BC_MUL: case KP_BC_DIV: case KP_BC_MOD:
            case KP_BC_ADDF: case KP_BC_SUBF: case KP_BC_MULF: case KP_BC_DIVF: /* (ADD when not Floats) */
                TAINT(i->a, TRK(i->b) || TRK(i->c));
                break;
            case KP_BC_FORPREP: case KP_BC_FORLOOP: TAINT(i->a + 2u, TR(i->a) || TR(i->a + 1u)); break;
            case KP_BC_CALLS: {
                /* the arguments' registers were the callee's, which left
                 * nothing to drop in them; the result has the declared
                 * type of a script function (RET checks it) */
                const KpOverload *co = i->c && i->c <= p->ncalls ? p->calls[i->c - 1].ov : NULL;
                TAINT(i->a, !co || co->native || !co->ret || co->ret->kind != KP_TK_SCALAR ||
                                !PLAIN_TAG(co->ret->tag));
                break;
            }
            /* a value of any kind into R(a) */
            case KP_BC_REF: /* a reference (an error leaves UNSET): nothing to drop */
                break;
            case KP_BC_CALL: case KP_BC_VINDEX: case KP_BC_VSETINDEX:
            case KP_BC_GETINDEX: case KP_BC_NEWLIST: case KP_BC_NEWMAP:
            case KP_BC_NEWREC: case KP_BC_DEFAULT: case KP_BC_GETG: case KP_BC_BOXNEW:
            case KP_BC_GETFIELD: /* d 32: a plain field by its static type (else refd is set) */
                TAINT(i->a, !(i->d & 32));
                break;
            case KP_BC_BOXREF: case KP_BC_TAKE: case KP_BC_USING: case KP_BC_SETREF:
            case KP_BC_VGET: case KP_BC_VGETK: case KP_BC_NEWLISTK:
                TAINT(i->a, true);
                break;
            default: return ~(uint64_t)0; /* loops over containers, keep, defers */
            }
        }
#undef REG_OK
#undef TAINT
#undef TR
#undef TRK
    }
    uint64_t m = 0;
    for (uint32_t r = 0; r < n; r++)
        if (t[r]) m |= (uint64_t)1 << (r < 63 ? r : 63);
    return m;
}

void kp_proto_finish(KpVM *vm, KpProto *p, const KpOverload *ov) {
    (void)vm;
    /* RET's fast path: a plain value of the declared type, or of any
     * plain type when none is declared */
    if (!p->ret) p->ret_tags = PLAIN_TAGS;
    else if (p->ret->kind == KP_TK_SCALAR && PLAIN_TAG(p->ret->tag)) p->ret_tags = (uint32_t)1 << p->ret->tag;
    else p->ret_tags = 0;
    /* (the error path writes a catch's Error where no instruction does) */
    p->own_regs = p->ntries ? ~(uint64_t)0 : scan_own_regs(p, ov);
    /* RET looks at the registers that may own one by one (about 5
     * instructions each), or at all of them two at a time (about 1.5
     * each): where more than half may own, bit 63 asks for the second (for fewer
     * than 63 registers it names none: ret_clear drops only the others) */
    if (p->own_regs != ~(uint64_t)0 && p->nregs < 63 && (unsigned)__builtin_popcountll(p->own_regs) * 2 > p->nregs)
        p->own_regs |= (uint64_t)1 << 63;
    p->pfast = ov && !ov->variadic && ov->nparams <= 4;
    for (uint32_t q = 0; p->pfast && q < ov->nparams; q++) {
        const KpParam *pp = &ov->params[q];
        if (pp->mode != KP_PM_VALUE || !PLAIN_TAG(pp->fast_tag)) p->pfast = 0;
        else p->ptags[q] = pp->fast_tag;
    }
}

/* RET's slow path for the frame's registers: references into the frame
 * die (when one was made), and the registers that may own are dropped,
 * the last first; false if a deinit failed. */
static bool __attribute__((noinline)) ret_clear(KpVM *vm, KpFrame *fr) {
    KpProto *p = fr->proto;
    KpValue *R = fr->base;
    uint64_t m = p->own_regs;
    if (fr->refd) {
        uint32_t *gen = vm->reg_gen + (R - vm->stack);
        for (uint32_t q = p->nregs; q-- > 0;) gen[q]++;
        m = ~(uint64_t)0; /* (refd also when a register broke the scan's promise) */
    }
    if (m == ~(uint64_t)0) {
        /* not scanned: every register is dropped or cleared, the last first */
        KpValue *q = R + p->nregs;
        for (; q > R; q--) {
            if (UNLIKELY(KP_NEEDS_DROP(q[-1]))) return clear_regs(vm, R, q);
            q[-1].tag = KP_T_UNSET;
        }
        return true;
    }
    bool ok = true;
    for (uint32_t r = p->nregs; r-- > 0;) {
        if (!((m >> (r < 63 ? r : 63)) & 1) || !KP_NEEDS_DROP(R[r])) continue;
        if (!clear_regs(vm, R + r, R + r + 1)) ok = false;
    }
    return ok;
}

static bool execute(KpVM *vm, int base_depth);

/* Calls beyond this depth are "stack overflow"; the frames above it are a
 * reserve for the deinits and defers that run while that error unwinds. */
#define KP_CALL_LIMIT (KP_MAX_FRAMES - 256)
#define KP_STACK_RESERVE 65536

KpValue *kp_vm_call_limit(KpVM *vm) { return vm->stack_end - KP_STACK_RESERVE - 260; }

static bool push_frame(KpVM *vm, KpOverload *ov, KpValue *base) {
    KpProto *p = ov->proto;
    int limit = vm->unwinding ? KP_MAX_FRAMES : KP_CALL_LIMIT;
    KpValue *end = vm->unwinding ? vm->stack_end : vm->stack_end - KP_STACK_RESERVE;
    if (vm->nframes >= limit || base + p->nregs + 260 >= end)
        return kp_vm_error(vm, "stack overflow (%d nested calls)", vm->nframes);
    KpFrame *f = &vm->frames[vm->nframes++];
    f->proto = p;
    f->ov = ov;
    f->pc = p->code;
    f->base = base;
    f->is_defer = false;
    f->is_main = false;
    f->refd = false;
    return true;
}

/* Stack space above every live register. */
static KpValue *stack_top(KpVM *vm) {
    if (!vm->nframes) return vm->stack + vm->main_nregs;
    KpFrame *f = &vm->frames[vm->nframes - 1];
    KpValue *t = f->base + f->proto->nregs;
    return t > vm->native_top ? t : vm->native_top;
}

bool kp_vm_call_value(KpVM *vm, KpValue fn, KpValue *in, int nargs, KpValue *out) {
    KpValue *top = stack_top(vm);
    KpRecord *cr = as_closure(kp_deref(fn));
    if (cr && top + nargs + 2 < vm->stack_end) {
        /* a function literal's value: its captures follow the arguments */
        for (int i = 0; i < nargs; i++) top[1 + i] = in[i];
        if (!closure_args(vm, cr, top + 1, &nargs, NULL)) {
            for (int i = 0; i < nargs; i++) {
                if (top[1 + i].tag != KP_T_REF && KP_NEEDS_DROP(top[1 + i])) kp_drop(vm, top[1 + i]);
                top[1 + i] = kp_unset();
            }
            return false;
        }
        top[0] = kp_ptr(KP_T_FUNC, cr->type->closure->func);
        return kp_vm_call_at(vm, top, nargs, out);
    }
    if (top + nargs + 2 >= vm->stack_end || fn.tag != KP_T_FUNC) {
        /* the arguments are the call's: given back as a failed bind does */
        if (top + nargs + 2 >= vm->stack_end) kp_vm_error(vm, "stack overflow");
        else kp_vm_error(vm, "cannot call %s", kp_a(kp_value_type_name(vm, fn)));
        for (int i = 0; i < nargs; i++)
            if (in[i].tag != KP_T_REF && KP_NEEDS_DROP(in[i])) kp_drop(vm, in[i]);
        return false;
    }
    top[0] = fn;
    for (int i = 0; i < nargs; i++) top[1 + i] = in[i];
    return kp_vm_call_at(vm, top, nargs, out);
}

bool kp_vm_call_at(KpVM *vm, KpValue *top, int nargs, KpValue *out) {
    KpFunc *f = top[0].p;
    KpOverload *ov = NULL;
    bool ok;
    if (LIKELY(f->n == 1) && f->ovs[0]->proto && nargs == f->ovs[0]->nparams) {
        /* one script overload and every argument of its parameter's exact
         * scalar type, or a reference bound as it is (CALL's fast path):
         * nothing to select or bind */
        ov = f->ovs[0];
        const KpProto *op = ov->proto;
        int j = 0;
        if (op->pfast)
            while (j < nargs && top[1 + j].tag == op->ptags[j]) j++;
        else /* (& and $& parameters: sort's less function, a literal's captures) */
            j = args_bind_fast(vm, ov, top + 1, 0, nargs, 0);
        if (j < nargs) ov = NULL;
    }
    if (ov) ok = true;
    else {
        ov = select_overload(vm, f, top + 1, nargs, NULL);
        ok = ov && bind_args(vm, ov, top + 1, &nargs, NULL, 0);
    }
    if (ok && ov->native) {
        KpValue *save = vm->native_top;
        vm->native_top = top + 1 + nargs;
        KpValue r = kp_unit();
        vm->cur_native = ov;
        ok = ov->native(vm, top + 1, nargs, &r);
        vm->native_top = save;
        if (!clear_regs(vm, top + 1, top + 1 + nargs)) ok = false;
        top[0] = r;
    } else if (ok) {
        int depth = vm->nframes;
        KpProto *np = ov->proto;
        if (LIKELY(depth < KP_CALL_LIMIT && top + 1 + np->nregs < vm->call_limit)) {
            /* push_frame, inline (as CALLS does) */
            KpFrame *nf = &vm->frames[vm->nframes++];
            nf->proto = np;
            nf->ov = ov;
            nf->pc = np->code;
            nf->base = top + 1;
            nf->is_defer = false;
            nf->is_main = false;
            nf->refd = false;
            ok = execute(vm, depth);
        } else {
            ok = push_frame(vm, ov, top + 1) && execute(vm, depth);
        }
    } else {
        clear_regs(vm, top + 1, top + 1 + nargs);
    }
    *out = ok ? top[0] : kp_unit();
    top[0] = kp_unset();
    return ok;
}

bool kp_vm_call_deinit(KpVM *vm, KpOverload *ov, KpValue *slot) {
    KpValue ref = kp_ptr(KP_T_REF, slot);
    ref.flags = KP_VF_MUT | KP_VF_STATIC;
    KpValue out;
    bool ok = kp_vm_call_value(vm, kp_ptr(KP_T_FUNC, ov->func), &ref, 1, &out);
    kp_drop(vm, out);
    return ok;
}

/* ------------------------------------------------------------ unwinding */

static void run_defer(KpVM *vm, KpFrame *f, const KpDeferInfo *d) {
    const KpInstr *save = f->pc;
    f->pc = f->proto->code + d->code_pc;
    f->is_defer = true;
    int depth = vm->nframes;
    /* the defer runs in its frame; execute returns at DEFEREND */
    bool was = vm->unwinding;
    execute(vm, depth);
    vm->unwinding = was;
    f->is_defer = false;
    f->pc = save;
}

/* Drops the registers of the top frame, running its active defers at
 * their place; `lowest` is the first register to keep.  With `t`, only
 * the try block's: its registers (from its watermark) and the defers
 * registered inside it. */
static void unwind_frame(KpVM *vm, uint32_t lowest, const KpTryInfo *t) {
    KpFrame *f = &vm->frames[vm->nframes - 1];
    KpProto *p = f->proto;
    uint32_t off = (uint32_t)(f->pc - p->code);
    if (off) off--;
    uint32_t top = p->nregs;
    if (t && t->watermark > lowest) lowest = t->watermark;
    for (uint32_t i = p->ndefers; i-- > 0;) {
        const KpDeferInfo *d = &p->defers[i];
        if (off < d->start_pc || (d->end_pc && off >= d->end_pc)) continue;
        if (t && (d->start_pc < t->start_pc || d->start_pc >= t->end_pc)) continue;
        if (d->watermark < top) {
            clear_regs(vm, f->base + (d->watermark > lowest ? d->watermark : lowest), f->base + top);
            top = d->watermark;
        }
        run_defer(vm, f, d);
    }
    if (top > lowest) clear_regs(vm, f->base + lowest, f->base + top);
}

/* The Error record of the located error in vm->err and vm->trace, from
 * the script heap (not the context allocator, which may be the one that
 * ran out: it stays free to be reset); false when out of memory. */
static bool make_error(KpVM *vm, KpValue *out) {
    KpAllocator *save = vm->ctx;
    vm->ctx = vm->heap;
    KpRecord *r = kp_record_new(vm, vm->t_error);
    KpList *l = r ? kp_list_new(vm, vm->ntrace) : NULL;
    bool ok = l != NULL;
    if (r) {
        for (uint32_t k = 0; k < 6; k++) r->f[k] = kp_unset();
        r->f[3] = kp_int(vm->err_line);
        r->f[4] = kp_int(vm->err_col);
    }
    if (l) r->f[5] = kp_ptr(KP_T_LIST, l);
    const char *msg = vm->err.data ? vm->err.data : "";
    size_t mlen = vm->err.len;
    if (mlen >= vm->err_head) { msg += vm->err_head; mlen -= vm->err_head; }
    const char *kind = kp_vm_error_kind_name(vm->err_kind);
    const char *file = vm->err_src && vm->err_src->name ? vm->err_src->name : "?";
    const char *strs[3] = {kind, msg, file};
    size_t lens[3] = {strlen(kind), mlen, strlen(file)};
    for (int k = 0; k < 3 && ok; k++) {
        KpString *str = kp_str_new(vm, vm->heap, strs[k], lens[k]);
        if (!str) ok = false;
        else r->f[k] = kp_ptr(KP_T_STR, str);
    }
    size_t off = 0;
    for (uint32_t k = 0; k < vm->ntrace && ok && vm->trace.data && off < vm->trace.len; k++) {
        const char *e = vm->trace.data + off;
        size_t n = strlen(e);
        off += n + 1;
        KpString *str = kp_str_new(vm, vm->heap, e, n);
        if (!str || !kp_list_push(vm, l, kp_ptr(KP_T_STR, str))) ok = false;
    }
    vm->ctx = save;
    if (!ok) {
        if (r) kp_drop(vm, kp_ptr(KP_T_RECORD, r));
        return false;
    }
    *out = kp_ptr(KP_T_RECORD, r);
    return true;
}

/* The error path's catch: unwinds the frames above frame `depth`, then
 * the try block `t` of that frame (its defers and registers, as at a
 * normal exit of its scopes), puts the Error into the catch variable and
 * sets the frame to continue at the catch.  False, with the error
 * reported, when the Error cannot be made (out of memory): the error then
 * goes on unwinding, uncaught. */
static bool catch_error(KpVM *vm, int depth, const KpTryInfo *t) {
    bool was = vm->unwinding, was_catching = vm->catching;
    vm->unwinding = true;
    vm->catching = true;
    while (vm->nframes - 1 > depth) {
        KpFrame *f = &vm->frames[vm->nframes - 1];
        unwind_frame(vm, f->is_main ? f->globals : 0, NULL);
        vm->nframes--;
    }
    KpFrame *f = &vm->frames[depth];
    unwind_frame(vm, f->is_main ? f->globals : 0, t);
    vm->unwinding = was;
    vm->catching = was_catching;
    KpValue e;
    if (!make_error(vm, &e)) {
        vm->err_caught = false;
        report_error(vm);
        return false;
    }
    f->base[t->err_reg] = e;
    f->pc = f->proto->code + t->catch_pc;
    if (UNLIKELY(vm->trace_own)) {
        char buf[320];
        const char *name = reg_name(f, t->err_reg);
        snprintf(buf, sizeof buf, "[own] %s:%u:%u catch %s: Error\n", f->proto->src ? f->proto->src->name : "?", t->line,
                 t->col, name ? name : "_");
        vm->write_err(vm->write_ud, buf, strlen(buf));
    }
    vm->status = KP_OK;
    kp_buf_reset(&vm->err);
    vm->err_located = false;
    vm->err_caught = false;
    vm->err_kind = KP_EK_RUNTIME;
    return true;
}

/* deinit(x) through reference r: a dead reference is an error (-1); a
 * kept variable ends its manual keep (1); otherwise 0, a plain deinit. */
static int end_kept(KpVM *vm, KpValue r) {
    if (!kp_ref_ok(r)) return bad_value(vm, kp_ref_dead(r), NULL) ? 0 : -1;
    if (!(r.flags & KP_VF_BOXED)) return 0;
    KpBox *b = (KpBox *)((char *)r.p - offsetof(KpBox, v));
    if (!b->manual && !b->file) return 0;
    return kp_keep_end_manual(vm, b) ? 1 : -1;
}

/* ------------------------------------------------------------ the loop */

#define RK(x) (((x) & KP_RK_CONST) ? &K[(x) & 0x7fff] : &R[(x)])
#define POS (KP_POS_PACK(p->lines[pc - 1 - p->code].line, p->lines[pc - 1 - p->code].col))
#define SAVEPC() (fr->pc = pc)
#define LOADFRAME()                      \
    do {                                 \
        fr = &vm->frames[vm->nframes - 1]; \
        p = fr->proto;                   \
        pc = fr->pc;                     \
        R = fr->base;                    \
        K = p->k;                        \
    } while (0)
/* the budget and the interrupt: one test when neither is set */
#define CHECK_INTERRUPT()                                                           \
    do {                                                                            \
        if (UNLIKELY(atomic_load_explicit(&vm->interrupt, memory_order_relaxed))) { \
            SAVEPC();                                                               \
            if (!attention(vm)) goto error;                                         \
        }                                                                           \
    } while (0)

/* CHECK_INTERRUPT's slow path: false (with the error set) when the budget
 * is used up or an interrupt was asked for. */
static bool __attribute__((noinline)) attention(KpVM *vm) {
    int a = atomic_load_explicit(&vm->interrupt, memory_order_relaxed);
    if ((a & KP_ATTN_BUDGET) && vm->budget >= 0 && vm->budget-- == 0) {
        vm->budget = 0; /* stays used up until the host sets a new one */
        return kp_vm_error_kind(vm, KP_EK_BUDGET, "instruction budget exhausted");
    }
    if (a & KP_ATTN_INTERRUPT) {
        atomic_fetch_and(&vm->interrupt, ~KP_ATTN_INTERRUPT);
        return kp_vm_error_kind(vm, KP_EK_INTERRUPT, "interrupted");
    }
    if (a & KP_ATTN_STOP) /* (a parallel worker: another one failed; stays set) */
        return kp_vm_error_kind(vm, KP_EK_INTERRUPT, "stopped: another worker of the parallel call failed");
    return true;
}

static bool execute_inner(KpVM *vm, int base_depth);

/* Runs with this thread's current VM set (checked references read it). */
static bool execute(KpVM *vm, int base_depth) {
    KpVM *prev = kp_tls_vm;
    kp_tls_vm = vm;
    bool ok = execute_inner(vm, base_depth);
    kp_tls_vm = prev;
    return ok;
}

static bool execute_inner(KpVM *vm, int base_depth) {
    KpFrame *fr;
    KpProto *p;
    const KpInstr *pc;
    KpValue *R, *K;
    const KpInstr *i;
    KpValue ret_v; /* RET, RET0: the value returned */
    LOADFRAME();

#ifdef KP_COMPUTED_GOTO
    static const void *const labels[] = {
#define KP_X_LABEL(name, doc) &&L_##name,
        KP_OPCODES(KP_X_LABEL)
#undef KP_X_LABEL
    };
#define CASE(name) L_##name:
#define NEXT                \
    do {                    \
        i = pc++;           \
        goto *labels[i->op]; \
    } while (0)
    NEXT;
#else
#define CASE(name) case KP_BC_##name:
#define NEXT goto dispatch
dispatch:
    i = pc++;
    switch (i->op) {
#endif

    CASE(NOP) NEXT;
    CASE(LOADK) {
        KpValue v = K[i->sbx];
        if (UNLIKELY(KP_NEEDS_DROP(R[i->a]))) { SAVEPC(); if (!set_slot(vm, &R[i->a], v)) goto error; }
        else R[i->a] = v;
        NEXT;
    }
    CASE(LOADI) {
        if (UNLIKELY(KP_NEEDS_DROP(R[i->a]))) { SAVEPC(); if (!set_slot(vm, &R[i->a], kp_int(i->sbx))) goto error; }
        else vset_i(&R[i->a], KP_T_INT, i->sbx);
        NEXT;
    }
    CASE(LOADUNIT) {
        if (LIKELY(!KP_NEEDS_DROP(R[i->a]))) { vset_i(&R[i->a], KP_T_UNIT, 0); NEXT; }
        SAVEPC();
        if (!set_slot(vm, &R[i->a], kp_unit())) goto error;
        NEXT;
    }
    CASE(LOADBOOL) {
        SAVEPC();
        if (!set_slot(vm, &R[i->a], kp_bool(i->b != 0))) goto error;
        NEXT;
    }
    CASE(MOVE) {
        {
            const KpValue *src = &R[i->b];
            if (LIKELY(!KP_NEEDS_DROP(*src) && src->tag > KP_T_UNSET && src->tag != KP_T_MOVED)) {
                if (LIKELY(!KP_NEEDS_DROP(R[i->a]))) { vcopy(&R[i->a], src); NEXT; }
            }
        }
        KpValue v = R[i->b];
        SAVEPC();
        if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) { bad_value(vm, v, reg_name(fr, i->b)); goto error; }
        if (KP_IS_MOVABLE(v)) {
            if (is_locked(v)) { kp_vm_error(vm, "cannot move '%s' while a for loop is iterating over it", reg_name(fr, i->b) ? reg_name(fr, i->b) : "it"); goto error; }
            if (UNLIKELY(vm->trace_own) && reg_name(fr, i->b)) kp_vm_trace_own(vm, "move", v, &R[i->b], 0);
            R[i->b].tag = KP_T_MOVED;
            R[i->b].aux = POS;
            R[i->b].p = NULL;
        } else if (v.tag == KP_T_STR) {
            kp_str_incref(v.p);
        }
        if (!set_slot(vm, &R[i->a], v)) goto error;
        NEXT;
    }
    CASE(COPY) {
        SAVEPC();
        KpValue v = R[i->b];
        if (v.tag == KP_T_STR) kp_str_incref(v.p);
        if (KP_IS_MOVABLE(v)) { kp_vm_error(vm, "internal: COPY of an owned value"); goto error; }
        if (!set_slot(vm, &R[i->a], v)) goto error;
        NEXT;
    }
    CASE(TAKE) {
        KpValue v = R[i->a];
        if (v.tag == KP_T_REF && (v.flags & KP_VF_PLACE)) {
            SAVEPC();
            KpValue x;
            if (!take_from(vm, ref_slot_err(vm, v), &x, POS, (v.flags & KP_VF_ELEM) != 0, NULL)) goto error;
            R[i->a] = x;
        }
        NEXT;
    }
    CASE(DROP) {
        uint32_t a = i->a, n = i->b;
        if (LIKELY(n == 1 && !KP_NEEDS_DROP(R[a]))) { /* one scalar temporary */
            vm->reg_gen[(R + a) - vm->stack]++;
            R[a] = kp_unset();
            NEXT;
        }
        SAVEPC();
        if (!clear_regs(vm, R + a, R + a + n)) goto error;
        NEXT;
    }

#define ARITH(NAME, OPC, EXPR_OK)                                                   \
    CASE(NAME) {                                                                    \
    arith_##NAME: __attribute__((unused));                                                                \
        KpValue *a = RK(i->b), *b = RK(i->c);                                       \
        if (LIKELY(a->tag == KP_T_INT && b->tag == KP_T_INT)) {                     \
            int64_t r;                                                              \
            if (LIKELY(EXPR_OK) && LIKELY(!KP_NEEDS_DROP(R[i->a]))) {               \
                vset_i(&R[i->a], KP_T_INT, r);                                      \
                NEXT;                                                               \
            }                                                                       \
        } else if (a->tag == KP_T_FLOAT && b->tag == KP_T_FLOAT && OPC != KP_BC_MOD && \
                   !KP_NEEDS_DROP(R[i->a])) {                                       \
            double x = a->f, y = b->f, r = OPC == KP_BC_ADD ? x + y : OPC == KP_BC_SUB ? x - y : OPC == KP_BC_MUL ? x * y : x / y; \
            vset_f(&R[i->a], r);                                                    \
            NEXT;                                                                   \
        } else if ((a->tag == KP_T_REF || b->tag == KP_T_REF) && !KP_NEEDS_DROP(R[i->a]) && \
                   arith_ref_int(vm, OPC, &R[i->a], a, b)) {                        \
            NEXT;                                                                   \
        }                                                                           \
        SAVEPC();                                                                   \
        if (!arith_slow(vm, OPC, &R[i->a], *a, *b)) goto error;                     \
        NEXT;                                                                       \
    }
    ARITH(ADD, KP_BC_ADD, !__builtin_add_overflow(a->i, b->i, &r))
    ARITH(SUB, KP_BC_SUB, !__builtin_sub_overflow(a->i, b->i, &r))
    ARITH(MUL, KP_BC_MUL, !__builtin_mul_overflow(a->i, b->i, &r))
    ARITH(DIV, KP_BC_DIV, (b->i != 0 && !(a->i == INT64_MIN && b->i == -1) && ((r = a->i / b->i), 1)))
    ARITH(MOD, KP_BC_MOD, (b->i != 0 && b->i != -1 && ((r = a->i % b->i), 1)))

    /* The same on Floats, emitted where both operands are Floats by their
     * static types: the Float case is tested first (and alone); anything
     * else — a value of another type after all, a register to drop — runs
     * as the general instruction. */
#define FARITH(NAME, BASE, EXPR)                                                    \
    CASE(NAME) {                                                                    \
        const KpValue *a = RK(i->b), *b = RK(i->c);                                 \
        if (LIKELY(a->tag == KP_T_FLOAT && b->tag == KP_T_FLOAT && !KP_NEEDS_DROP(R[i->a]))) { \
            vset_f(&R[i->a], EXPR);                                                 \
            NEXT;                                                                   \
        }                                                                           \
        goto arith_##BASE;                                                          \
    }
    FARITH(ADDF, ADD, a->f + b->f)
    FARITH(SUBF, SUB, a->f - b->f)
    FARITH(MULF, MUL, a->f * b->f)
    FARITH(DIVF, DIV, a->f / b->f)

    CASE(EQ) {
        KpValue *a = RK(i->b), *b = RK(i->c);
        bool r;
        SAVEPC();
        if (a->tag == KP_T_INT && b->tag == KP_T_INT) r = a->i == b->i;
        else if (unit_cmp(vm, a, b, &r)) {
        } else if (!kp_equal_checked(vm, *a, *b, &r)) goto error;
        if (!set_slot(vm, &R[i->a], kp_bool(r))) goto error;
        NEXT;
    }
    CASE(NE) {
        KpValue *a = RK(i->b), *b = RK(i->c);
        bool r;
        SAVEPC();
        if (a->tag == KP_T_INT && b->tag == KP_T_INT) r = a->i != b->i;
        else if (unit_cmp(vm, a, b, &r)) r = !r;
        else if (!kp_equal_checked(vm, *a, *b, &r)) goto error;
        else r = !r;
        if (!set_slot(vm, &R[i->a], kp_bool(r))) goto error;
        NEXT;
    }
    CASE(LT) {
        KpValue *a = RK(i->b), *b = RK(i->c);
        SAVEPC();
        int c = (a->tag == KP_T_INT && b->tag == KP_T_INT) ? (a->i < b->i ? -1 : 1) : compare(vm, *a, *b, KP_BC_LT);
        if (c == -2) goto error;
        if (!set_slot(vm, &R[i->a], kp_bool(c == -1))) goto error;
        NEXT;
    }
    CASE(LE) {
        KpValue *a = RK(i->b), *b = RK(i->c);
        SAVEPC();
        int c = (a->tag == KP_T_INT && b->tag == KP_T_INT) ? (a->i <= b->i ? 0 : 1) : compare(vm, *a, *b, KP_BC_LE);
        if (c == -2) goto error;
        if (!set_slot(vm, &R[i->a], kp_bool(c == -1 || c == 0))) goto error;
        NEXT;
    }
    CASE(NEG) {
        KpValue v = kp_deref(R[i->b]);
        SAVEPC();
        if (v.tag == KP_T_INT) {
            if (v.i == INT64_MIN) { kp_vm_error(vm, "integer overflow in -(%" PRId64 ")", v.i); goto error; }
            v.i = -v.i;
        } else if (v.tag == KP_T_FLOAT) {
            v.f = -v.f;
        } else if (KP_IS_SIZED_INT(v.tag) && v.tag < KP_T_U8) {
            int k = v.tag - KP_T_I8;
            if (-v.i > sized_rng[k].hi) { kp_vm_error(vm, "%s overflow in negation", tag_name(v.tag)); goto error; }
            v.i = -v.i;
        } else {
            if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) bad_value(vm, v, reg_name(fr, i->b));
            else kp_vm_error(vm, "cannot negate %s", kp_a(kp_value_type_name(vm, v)));
            goto error;
        }
        if (!set_slot(vm, &R[i->a], v)) goto error;
        NEXT;
    }
    CASE(NOT) {
        KpValue v = kp_deref(*RK(i->b));
        SAVEPC();
        if (v.tag != KP_T_BOOL) {
            if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) bad_value(vm, v, NULL);
            else kp_vm_error(vm, "'not' needs a Bool, but the value is %s", kp_value_type_name(vm, v));
            goto error;
        }
        if (!set_slot(vm, &R[i->a], kp_bool(!v.i))) goto error;
        NEXT;
    }
    /* Bitwise on Int; the shifts' fast path needs a count in 0..63. */
#define BITOP(NAME, OPC, EXPR_OK)                                                   \
    CASE(NAME) {                                                                    \
        KpValue *a = RK(i->b), *b = RK(i->c);                                       \
        if (LIKELY(a->tag == KP_T_INT && b->tag == KP_T_INT && (EXPR_OK) &&         \
                   !KP_NEEDS_DROP(R[i->a]))) {                                      \
            int64_t x = a->i, y = b->i, r = 0;                                      \
            bit_calc(vm, OPC, x, y, &r);                                            \
            vset_i(&R[i->a], KP_T_INT, r);                                          \
            NEXT;                                                                   \
        }                                                                           \
        SAVEPC();                                                                   \
        if (!bit_slow(vm, OPC, &R[i->a], *a, *b)) goto error;                       \
        NEXT;                                                                       \
    }
    BITOP(BAND, KP_BC_BAND, true)
    BITOP(BOR, KP_BC_BOR, true)
    BITOP(BXOR, KP_BC_BXOR, true)
    BITOP(SHL, KP_BC_SHL, (uint64_t)b->i < 64)
    BITOP(SHR, KP_BC_SHR, (uint64_t)b->i < 64)
    BITOP(ASR, KP_BC_ASR, (uint64_t)b->i < 64)
#undef BITOP
    CASE(BNOT) {
        KpValue *a = RK(i->b);
        if (LIKELY(a->tag == KP_T_INT && !KP_NEEDS_DROP(R[i->a]))) {
            vset_i(&R[i->a], KP_T_INT, ~a->i);
            NEXT;
        }
        SAVEPC();
        if (!bit_slow(vm, KP_BC_BNOT, &R[i->a], *a, *a)) goto error;
        NEXT;
    }
    CASE(JMP) {
        if (i->sbx < 0) CHECK_INTERRUPT();
        pc += i->sbx;
        NEXT;
    }
    CASE(JMPF) {
        KpValue v = kp_deref(R[i->a]);
        if (LIKELY(v.tag == KP_T_BOOL)) {
            if (!v.i) pc += i->sbx;
            NEXT;
        }
        SAVEPC();
        kp_vm_error(vm, "a condition must be a Bool, but the value is %s", kp_value_type_name(vm, v));
        goto error;
    }
    CASE(JMPT) {
        KpValue v = kp_deref(R[i->a]);
        if (LIKELY(v.tag == KP_T_BOOL)) {
            if (v.i) pc += i->sbx;
            NEXT;
        }
        SAVEPC();
        kp_vm_error(vm, "a condition must be a Bool, but the value is %s", kp_value_type_name(vm, v));
        goto error;
    }
#define JOFF(i) ((int32_t)(((uint32_t)(i)->d << 16 | (i)->c) << 8) >> 8)
/* (a jump back is a while loop's test at its bottom: it looks for an
 * interrupt, as JMP back does) */
#define JCMP(NAME, INTCMP, CMPOK)                                            \
    CASE(NAME) {                                                             \
        KpValue *a = RK(i->a), *b = RK(i->b);                                \
        if (LIKELY(a->tag == KP_T_INT && b->tag == KP_T_INT)) {              \
            if (!(INTCMP)) {                                                 \
                int32_t off = JOFF(i);                                       \
                if (off < 0) CHECK_INTERRUPT();                              \
                pc += off;                                                   \
            }                                                                \
            NEXT;                                                            \
        }                                                                    \
        SAVEPC();                                                            \
        int c = compare(vm, *a, *b, KP_BC_LT);                               \
        if (c == -2) goto error;                                             \
        if (!(CMPOK)) {                                                      \
            int32_t off = JOFF(i);                                           \
            if (off < 0) CHECK_INTERRUPT();                                  \
            pc += off;                                                       \
        }                                                                    \
        NEXT;                                                                \
    }
    JCMP(JLT, a->i < b->i, c == -1)
    JCMP(JLE, a->i <= b->i, c == -1 || c == 0)
#define JCMPI(NAME, INTCMP, CMPOK)                                           \
    CASE(NAME) {                                                             \
        KpValue *a = &R[i->a];                                               \
        int64_t imm = (int16_t)i->b;                                         \
        if (LIKELY(a->tag == KP_T_INT)) {                                    \
            if (!(INTCMP)) pc += JOFF(i);                                    \
            NEXT;                                                            \
        }                                                                    \
        SAVEPC();                                                            \
        int c = compare(vm, *a, kp_int(imm), KP_BC_LT);                      \
        if (c == -2) goto error;                                             \
        if (!(CMPOK)) pc += JOFF(i);                                         \
        NEXT;                                                                \
    }
    JCMPI(JLTI, a->i < imm, c == -1)
    JCMPI(JLEI, a->i <= imm, c == -1 || c == 0)
    JCMPI(JGTI, a->i > imm, c == 1)
    JCMPI(JGEI, a->i >= imm, c == 1 || c == 0)
    CASE(ADDI) {
        KpValue *a = &R[i->b];
        int64_t r;
        if (LIKELY(a->tag == KP_T_INT) && !__builtin_add_overflow(a->i, (int64_t)(int16_t)i->c, &r) &&
            LIKELY(!KP_NEEDS_DROP(R[i->a]))) {
            vset_i(&R[i->a], KP_T_INT, r);
            NEXT;
        }
        SAVEPC();
        /* `x - 1` is ADDI -1: an error names the operator as written */
        if ((int16_t)i->c < 0 ? !arith_slow(vm, KP_BC_SUB, &R[i->a], *a, kp_int(-(int16_t)i->c))
                              : !arith_slow(vm, KP_BC_ADD, &R[i->a], *a, kp_int((int16_t)i->c)))
            goto error;
        NEXT;
    }
    CASE(JEQ) {
        KpValue *a = RK(i->a), *b = RK(i->b);
        bool eq;
        if (a->tag == KP_T_INT && b->tag == KP_T_INT) eq = a->i == b->i;
        else if (unit_cmp(vm, a, b, &eq)) {
        } else {
            SAVEPC();
            if (!kp_equal_checked(vm, *a, *b, &eq)) goto error;
        }
        if (!eq) pc += JOFF(i);
        NEXT;
    }
    CASE(JNE) {
        KpValue *a = RK(i->a), *b = RK(i->b);
        bool eq;
        if (a->tag == KP_T_INT && b->tag == KP_T_INT) eq = a->i == b->i;
        else if (unit_cmp(vm, a, b, &eq)) {
        } else {
            SAVEPC();
            if (!kp_equal_checked(vm, *a, *b, &eq)) goto error;
        }
        if (eq) pc += JOFF(i);
        NEXT;
    }
    CASE(GETFX) {
        /* the field read and the element read that follow (pc, pc + 1) */
        const KpInstr *g = pc, *x = pc + 1;
        const KpValue *fp = fused_field(vm, &R[g->b], &K[g->c], 0);
        const KpValue *ix = RK(x->c);
        if (LIKELY(fp && fp->tag == KP_T_LIST && ix->tag == KP_T_INT && !(x->d & 2) && !KP_NEEDS_DROP(R[x->a]))) {
            const KpList *l = fp->p;
            if (LIKELY((uint64_t)ix->i < l->len && KP_IS_PLAIN(l->items[ix->i]))) {
                vcopy(&R[x->a], &l->items[ix->i]);
                pc += i->a;
                NEXT;
            }
        }
        NEXT; /* the sequence reads it, and reports what it finds */
    }
    CASE(SETFX) {
        /* the field's reference and the store that follow (pc, pc + 1) */
        const KpInstr *g = pc, *x = pc + 1;
        const KpValue *fp = fused_field(vm, &R[g->b], &K[g->c], KP_VF_MUT | KP_VF_PLACE);
        const KpValue *ix = RK(x->b);
        KpValue *vp = &R[x->c];
        if (LIKELY(fp && fp->tag == KP_T_LIST && ix->tag == KP_T_INT && KP_IS_PLAIN(*vp))) {
            KpList *l = fp->p;
            if (LIKELY((uint64_t)ix->i < l->len && !KP_NEEDS_DROP(l->items[ix->i]) && (!l->elem || kp_type_fits(l->elem, vp)))) {
                vcopy(&l->items[ix->i], vp);
                if (!(x->d & 1)) *vp = kp_unset(); /* (SETINDEX's d 1: a plain variable's, a copy) */
                pc += i->a;
                NEXT;
            }
        }
        NEXT; /* the sequence stores it, and reports what it finds */
    }
    CASE(JFUNIT) {
        /* the field read of the sequence that follows (pc: its GETFIELD) */
        const KpValue *fp = fused_field(vm, &R[pc->b], &K[pc->c], 0);
        if (LIKELY(fp && fp->tag != KP_T_REF && fp->tag != KP_T_UNSET && fp->tag != KP_T_MOVED)) {
            if ((fp->tag == KP_T_UNIT) != (i->b != 0)) pc += i->a; /* holds: past the sequence */
            else pc += JOFF(i);
            NEXT;
        }
        NEXT; /* the sequence decides, and reports what it finds */
    }
    CASE(GETFIELD) {
        {
            /* fast paths: a field of a record, or of a record behind a
             * reference or two, its slot from the name constant's cache
             * (field_cached) */
            const KpValue *ov = through_refs(vm, &R[i->b], 0);
            if (LIKELY(ov->tag == KP_T_RECORD)) {
                KpRecord *rec = ov->p;
                int32_t fi = field_cached(vm, rec->type, &K[i->c]);
                if (LIKELY(fi >= 0 && !KP_NEEDS_DROP(R[i->a]))) {
                    const KpValue *fp = &rec->f[fi];
                    /* a scalar read by value (or taken: a copy) */
                    if (LIKELY(!(i->d & 2) && KP_IS_PLAIN(*fp))) {
                        vcopy(&R[i->a], fp);
                        NEXT;
                    }
                    /* a reference to the field (d 2, `&r.f`, `$&r.f` with
                     * d 4; with d 8, a place passed on: the borrow of a
                     * `&`/`$&` argument), or an implicit borrow of a record
                     * or container field (d 8 alone: a comparison's
                     * operand), its record already in the block table: the
                     * reference read_place would make (a field that holds
                     * a reference passes it on: the general path) */
                    uint8_t dk = i->d & (uint8_t)~(4 | 32);
                    if ((dk == 2 || (dk == 10 && fp->tag != KP_T_REF) || (dk == 8 && !(i->d & 4) && KP_IS_MOVABLE(*fp))) &&
                        fp->tag != KP_T_UNSET && fp->tag != KP_T_MOVED && !vm->par && rec->h.block) {
                        R[i->a] = heap_ref(vm, fp, &rec->h,
                                           (uint8_t)(((i->d & 8) ? KP_VF_PLACE : 0) |
                                                     ((i->d & 2) && (i->d & 4) ? KP_VF_MUT : 0)));
                        if (i->d & 32) fr->refd = true;
                        NEXT;
                    }
                    /* a record field moved out (d 1: `x := r.f`, an
                     * argument by value): take_from's move */
                    if ((i->d & (uint8_t)~(16 | 32)) == 1 && fp->tag == KP_T_RECORD && !vm->trace_own) {
                        KpValue *sp = (KpValue *)fp;
                        R[i->a] = *sp;
                        sp->tag = KP_T_MOVED;
                        sp->aux = POS;
                        sp->p = NULL;
                        if (i->d & 32) fr->refd = true;
                        NEXT;
                    }
                }
            }
        }
        SAVEPC();
        {
            int done = getfield_record(vm, fr, i, R, K, POS);
            if (done < 0) goto error;
            if (done) NEXT;
        }
        const char *name = K[i->c].p;
        KpValue obj = R[i->b];
        if (obj.tag == KP_T_MOVED || obj.tag == KP_T_UNSET) { bad_value(vm, obj, reg_name(fr, i->b)); goto error; }
        KpValue *s = field_slot(vm, obj, name, fr, i->b);
        if (!s) goto error;
        KpValue out;
        if (kp_deref(obj).tag == KP_T_HEAP && name[0] != 'a') {
            /* .size and .data are computed: always a value */
            if (!set_slot(vm, &R[i->a], *s)) goto error;
            NEXT;
        }
        if (s->tag == KP_T_UNSET && !(i->d & 2)) {
            kp_vm_error(vm, "field '%s' of %s is unset", name, kp_value_type_name(vm, kp_deref(obj)));
            goto error;
        }
        KpValue ov = kp_deref(obj);
        KpObj *owner = ov.tag == KP_T_RECORD ? (KpObj *)ov.p : NULL;
        if (ov.tag == KP_T_HEAP && ((KpHeapAlloc *)ov.p)->from_self)
            owner = (KpObj *)((char *)((KpHeapAlloc *)ov.p)->from_self - offsetof(KpAllocObj, self));
        if (!read_place(vm, s, i->d, POS, false, &out, name, owner)) goto error;
        /* d 32 promised a plain value (the field's static type) to the RET
         * scan (p->own_regs); when the record turned out to be something
         * else, the frame's registers are all looked at on return */
        if (UNLIKELY((i->d & 32) && !KP_IS_PLAIN(out))) fr->refd = true;
        if (!set_slot(vm, &R[i->a], out)) goto error;
        NEXT;
    }
    CASE(SETFIELD) {
        {
            /* fast path: a scalar, a string or a record stored into a
             * field that takes it as it is (untyped, Any, the scalar's
             * exact type, the record's type), through writable references;
             * the old value, if owned and not iterated over, is dropped */
            KpValue *vp = &R[i->c];
            if (vp->tag == KP_T_INT || vp->tag == KP_T_FLOAT || vp->tag == KP_T_BOOL || vp->tag == KP_T_UNIT ||
                vp->tag == KP_T_STR || vp->tag == KP_T_RECORD) {
                const KpValue *ov = &R[i->a];
                bool ok = true;
                for (int k = 0; k < 3 && ov->tag == KP_T_REF; k++) {
                    if (!(ov->flags & (KP_VF_MUT | KP_VF_PLACE)) || !kp_ref_ok_in(vm, *ov)) { ok = false; break; }
                    ov = ov->p;
                }
                if (LIKELY(ok && ov->tag == KP_T_RECORD)) {
                    KpRecord *rec = ov->p;
                    int32_t fi = field_cached(vm, rec->type, &K[i->b]);
                    if (LIKELY(fi >= 0)) {
                        KpType *ft = rec->type->ftypes[fi];
                        KpValue *s = &rec->f[fi];
                        bool fits = !ft || ft->kind == KP_TK_ANY ||
                                    (vp->tag == KP_T_RECORD ? ft->kind == KP_TK_RECORD && ((KpRecord *)vp->p)->type == ft
                                                            : ft->kind == KP_TK_SCALAR && ft->tag == vp->tag && !ft->akind);
                        if (fits) {
                            if (LIKELY(!KP_NEEDS_DROP(*s))) {
                                vcopy(s, vp);
                                if (!(i->d & 1)) vp->tag = KP_T_UNSET; /* (d 1: a plain variable's, a copy) */
                                NEXT;
                            }
                            if (!is_locked(*s)) {
                                SAVEPC();
                                KpValue v = *vp;
                                *vp = kp_unset();
                                if (!set_slot(vm, s, v)) goto error;
                                NEXT;
                            }
                        }
                    }
                }
            }
        }
        SAVEPC();
        const char *name = K[i->b].p;
        KpValue obj = R[i->a];
        if (!writable(obj)) {
            kp_vm_error(vm, "cannot assign to field '%s' through a read-only reference (&); use $&", name);
            goto error;
        }
        if (kp_deref(obj).tag != KP_T_RECORD && kp_deref(obj).tag != KP_T_MOVED && kp_deref(obj).tag != KP_T_UNSET) {
            kp_vm_error(vm, "cannot assign field '%s' of %s", name, kp_a(kp_value_type_name(vm, kp_deref(obj))));
            goto error;
        }
        KpValue *s = field_slot(vm, obj, name, fr, i->a);
        if (!s) goto error;
        KpValue v = R[i->c];
        if (!((i->d & 1) && KP_IS_PLAIN(v))) R[i->c] = kp_unset();
        KpType *ft = field_type(obj, name);
        if (ft) {
            const char *why;
            if (!kp_type_coerce(vm, ft, &v, &why)) {
                kp_vm_error(vm, "field '%s' is %s, but the value is %s%s%s", name, ft->name, kp_value_type_name(vm, v), why ? ": " : "", why ? why : "");
                kp_drop(vm, v);
                goto error;
            }
        }
        if (is_locked(*s)) { kp_drop(vm, v); kp_vm_error(vm, "cannot replace field '%s' while a for loop is iterating over it", name); goto error; }
        if (!set_slot(vm, s, v)) goto error;
        NEXT;
    }
    CASE(GETINDEX) {
        {
            /* fast paths: an element of a list, or of a list behind a
             * reference or two, at an Int index in range */
            const KpValue *ov = through_refs(vm, &R[i->b], 0);
            const KpValue *ix = RK(i->c);
            if (LIKELY(ov->tag == KP_T_LIST && ix->tag == KP_T_INT && !KP_NEEDS_DROP(R[i->a]))) {
                KpList *l = ov->p;
                if (LIKELY((uint64_t)ix->i < l->len)) {
                    KpValue *ep = &l->items[ix->i];
                    /* a scalar read by value (a consuming read, d 1, of a
                     * scalar is a copy too) */
                    if (LIKELY(!(i->d & 2) && KP_IS_PLAIN(*ep))) {
                        vcopy(&R[i->a], ep);
                        NEXT;
                    }
                    /* a reference to the element (&xs[i], $&xs[i] with d 4;
                     * with d 8, a place passed on), the list already in the
                     * block table: the reference read_place makes */
                    uint8_t dk = i->d & (uint8_t)~(4 | 32);
                    if ((dk == 2 || (dk == 10 && ep->tag != KP_T_REF)) && ep->tag != KP_T_UNSET && ep->tag != KP_T_MOVED &&
                        !vm->par && l->h.block) {
                        R[i->a] = heap_ref(vm, ep, &l->h,
                                           (uint8_t)(KP_VF_ELEM | ((i->d & 8) ? KP_VF_PLACE : 0) |
                                                     ((i->d & 4) ? KP_VF_MUT : 0)));
                        NEXT;
                    }
                }
            }
        }
        SAVEPC();
        KpValue obj = R[i->b];
        KpValue *s = NULL, byte;
        if (!index_slot(vm, obj, *RK(i->c), &s, &byte, false, NULL)) goto error;
        KpValue out;
        KpValue cv = kp_deref(obj);
        if (!s) out = byte;
        else if (!read_place(vm, s, i->d, POS, true, &out, NULL, cv.tag >= KP_T_RECORD ? (KpObj *)cv.p : NULL)) goto error;
        if (!set_slot(vm, &R[i->a], out)) goto error;
        NEXT;
    }
    CASE(SETINDEX) {
        {
            /* fast path: a scalar into a scalar element of a list (itself,
             * or behind one or two live writable references) at an Int
             * index in range, when the list's element type takes the value
             * as it is (no conversion): what the general path below does,
             * without its checks that cannot fail here */
            const KpValue *ov = through_refs(vm, &R[i->a], KP_VF_MUT | KP_VF_PLACE);
            const KpValue *ix = RK(i->b);
            KpValue *vp = &R[i->c];
            if (LIKELY(ov->tag == KP_T_LIST && ix->tag == KP_T_INT && KP_IS_PLAIN(*vp))) {
                KpList *l = ov->p;
                const KpType *et = l->elem;
                if (LIKELY((uint64_t)ix->i < l->len &&
                           (!et || (et->kind == KP_TK_SCALAR && et->tag == vp->tag &&
                                    !(et->akind == 32 && vp->tag == KP_T_FLOAT))))) {
                    KpValue *s = &l->items[ix->i];
                    if (LIKELY(!KP_NEEDS_DROP(*s))) {
                        vcopy(s, vp);
                        if (!(i->d & 1)) *vp = kp_unset(); /* (d 1: a plain variable's, a copy) */
                        NEXT;
                    }
                }
            }
        }
        SAVEPC();
        KpValue obj = R[i->a];
        if (!writable(obj)) {
            kp_vm_error(vm, "cannot assign to an element through a read-only reference (&); use $&");
            goto error;
        }
        KpValue c = kp_deref(obj);
        KpValue v = R[i->c];
        if (!((i->d & 1) && KP_IS_PLAIN(v))) R[i->c] = kp_unset();
        if (!check_stored_ref(vm, v, "a list or map")) goto error;
        KpType *et = c.tag == KP_T_LIST ? ((KpList *)c.p)->elem : c.tag == KP_T_MAP ? ((KpMap *)c.p)->vtype : NULL;
        if (et) {
            const char *why;
            if (!kp_type_coerce(vm, et, &v, &why)) {
                kp_vm_error(vm, "element must be %s, but the value is %s", et->name, kp_value_type_name(vm, v));
                kp_drop(vm, v);
                goto error;
            }
        }
        KpValue *s = NULL;
        if (!index_slot(vm, obj, *RK(i->b), &s, NULL, true, &v)) { kp_drop(vm, v); goto error; }
        if (s) {
            if (is_locked(*s)) { kp_drop(vm, v); kp_vm_error(vm, "cannot replace an element while a for loop is iterating over it"); goto error; }
            if (!set_slot(vm, s, v)) goto error;
        }
        NEXT;
    }
    CASE(NEWLIST) {
        SAVEPC();
        KpList *l = kp_list_new(vm, i->b);
        if (!l) goto error;
        if (!set_slot(vm, &R[i->a], kp_ptr(KP_T_LIST, l))) goto error;
        NEXT;
    }
    CASE(NEWLISTK) {
        SAVEPC();
        const KpList *src = K[i->sbx].p;
        KpList *l = kp_list_new(vm, src->len);
        if (!l) goto error;
        if (src->len) memcpy(l->items, src->items, sizeof(KpValue) * src->len); /* Ints or Floats: no counts */
        l->len = src->len;
        if (!set_slot(vm, &R[i->a], kp_ptr(KP_T_LIST, l))) goto error;
        NEXT;
    }
    CASE(LISTPUSH) {
        SAVEPC();
        KpValue v = R[i->b];
        R[i->b] = kp_unset();
        if (v.tag == KP_T_REF && (v.flags & KP_VF_PLACE)) {
            KpValue x;
            if (!take_from(vm, ref_slot_err(vm, v), &x, POS, (v.flags & KP_VF_ELEM) != 0, NULL)) goto error;
            v = x;
        }
        if (!check_stored_ref(vm, v, "a list")) goto error;
        if (!kp_list_push(vm, R[i->a].p, v)) goto error;
        NEXT;
    }
    CASE(NEWMAP) {
        SAVEPC();
        KpMap *m = kp_map_new(vm);
        if (!m) goto error;
        if (!set_slot(vm, &R[i->a], kp_ptr(KP_T_MAP, m))) goto error;
        NEXT;
    }
    CASE(MAPSET) {
        SAVEPC();
        KpValue k = R[i->b], v = R[i->c];
        R[i->b] = kp_unset();
        R[i->c] = kp_unset();
        if (!kp_map_put(vm, R[i->a].p, k, v)) goto error;
        NEXT;
    }
    CASE(NEWREC) {
        SAVEPC();
        KpValue out;
        if (!new_record(vm, K[i->b].p, &R[i->c], &out)) goto error;
        if (!set_slot(vm, &R[i->a], out)) goto error;
        NEXT;
    }
    CASE(DEFAULT) {
        SAVEPC();
        KpValue out;
        if (!default_value(vm, K[i->b].p, &out)) goto error;
        if (!set_slot(vm, &R[i->a], out)) goto error;
        NEXT;
    }
    CASE(GETG) {
        const struct KpGlobal *g = &vm->globals[(uint32_t)i->b | (uint32_t)i->c << 16];
        KpValue *gs = &vm->stack[g->reg];
        if (LIKELY(i->d == 0 && KP_IS_PLAIN(*gs) && !KP_NEEDS_DROP(R[i->a]))) {
            /* a plain value read: copied (read_place's case) */
            vcopy(&R[i->a], gs);
            NEXT;
        }
        SAVEPC();
        KpValue out;
        if (!read_place(vm, gs, i->d, POS, false, &out, g->name, NULL)) goto error;
        if (!set_slot(vm, &R[i->a], out)) goto error;
        NEXT;
    }
    CASE(SETG) {
        SAVEPC();
        if (UNLIKELY(vm->par)) {
            /* the compiler refuses the direct writes (compiler/parcheck.c);
             * this is for those through a function value */
            kp_vm_error(vm, "a parallel worker cannot write the top-level variable '%s': workers only read what they share",
                        vm->globals[(uint32_t)i->b | (uint32_t)i->c << 16].name);
            goto error;
        }
        KpValue *s = &vm->stack[vm->globals[(uint32_t)i->b | (uint32_t)i->c << 16].reg];
        KpValue v = kp_unset();
        if (i->d == 2) { /* its value went on (KEEP took the box) */
            *s = v;
            NEXT;
        }
        if (!i->d) {
            v = R[i->a];
            R[i->a] = kp_unset();
        }
        if (!set_slot(vm, s, v)) goto error;
        NEXT;
    }
    CASE(BOXNEW) {
        SAVEPC();
        KpAllocator *al = vm->ctx;
        if (i->d == 1) {
            KpValue av = kp_deref(R[i->a]);
            if (av.tag != KP_T_ALLOCATOR) { kp_vm_error(vm, "keep ... using needs an allocator, not %s", kp_a(kp_value_type_name(vm, av))); goto error; }
            al = &((KpAllocObj *)av.p)->a;
            R[i->a] = kp_unset();
        }
        KpValue v = R[i->b];
        R[i->b] = kp_unset();
        if (v.tag == KP_T_REF && (v.flags & KP_VF_PLACE)) {
            KpValue x;
            if (!take_from(vm, ref_slot_err(vm, v), &x, POS, (v.flags & KP_VF_ELEM) != 0, NULL)) goto error;
            v = x;
        }
        KpValue bx;
        if (!kp_box_new(vm, al, v, i->c ? (const char *)K[i->c - 1].p : NULL, &bx)) goto error;
        /* (traced with the box: a variable in a far slot is named by it) */
        if (UNLIKELY(vm->trace_own)) kp_vm_trace_own(vm, "box", bx, &R[i->b], 0);
        if (!set_slot(vm, &R[i->a], bx)) goto error;
        NEXT;
    }
    CASE(BOXREF) {
        SAVEPC();
        KpBox *b = R[i->b].p;
        KpValue r = kp_make_ref(vm, &b->v, &b->h, KP_VF_PLACE | KP_VF_MUT | KP_VF_BOXED);
        if (r.tag != KP_T_REF || !set_slot(vm, &R[i->a], r)) goto error;
        NEXT;
    }
    CASE(KEEP) {
        SAVEPC();
        KpValue bv = R[i->a];
        if (bv.tag != KP_T_BOX) { kp_vm_error(vm, "this variable was already kept"); goto error; }
        KpBox *b = bv.p;
        if (UNLIKELY(vm->trace_own)) kp_vm_trace_own(vm, "keep", bv, NULL, i->c);
        if (!kp_keep(vm, b, &R[i->b], i->c, p->src ? p->src->name : NULL, p->lines[pc - 1 - p->code].line)) goto error;
        R[i->a] = kp_unset(); /* its count went to the owners (or to the manual keep) */
        NEXT;
    }
    CASE(SETREF) {
        SAVEPC();
        KpValue v = R[i->b];
        R[i->b] = kp_unset();
        KpValue r = R[i->a];
        if (r.tag != KP_T_REF) { /* the parameter owns a temporary */
            if (!set_slot(vm, &R[i->a], v)) goto error;
            NEXT;
        }
        if (!writable(r)) { kp_drop(vm, v); kp_vm_error(vm, "cannot assign through a read-only reference (&)"); goto error; }
        KpValue *s = ref_slot_err(vm, r);
        while (s && s->tag == KP_T_REF) s = ref_slot_err(vm, *s);
        if (!s) { kp_drop(vm, v); goto error; }
        if (is_locked(*s)) { kp_drop(vm, v); kp_vm_error(vm, "cannot replace a value while a for loop is iterating over it"); goto error; }
        if (!set_slot(vm, s, v)) goto error;
        NEXT;
    }
    CASE(USING) {
        SAVEPC();
        KpValue av = kp_deref(R[i->b]);
        if (av.tag == KP_T_RECORD) {
            KpValue sv;
            if (!kp_script_allocator_begin(vm, av, &sv)) goto error;
            if (!set_slot(vm, &R[i->a], sv)) goto error;
            NEXT;
        }
        if (av.tag != KP_T_ALLOCATOR) {
            if (av.tag == KP_T_MOVED || av.tag == KP_T_UNSET) bad_value(vm, av, reg_name(fr, i->b));
            else kp_vm_error(vm, "using needs an allocator, but the value is %s", kp_value_type_name(vm, av));
            goto error;
        }
        KpValue sv = kp_ptr(KP_T_CTXSAVE, vm->ctx);
        if (!set_slot(vm, &R[i->a], sv)) goto error;
        vm->ctx = &((KpAllocObj *)av.p)->a;
        NEXT;
    }
    CASE(REF) {
        KpValue *s = &R[i->b];
        /* (refd only where a reference to one of this frame's registers
         * is made: a reference passed on was counted where it was made) */
        if (LIKELY(!((i->d & 16) && s->tag == KP_T_REF) && s->tag != KP_T_MOVED && s->tag != KP_T_UNSET &&
                   !KP_NEEDS_DROP(R[i->a]))) {
            /* a reference to a live register: kp_make_ref's stack case */
            fr->refd = true;
            KpValue *dst = &R[i->a];
            uint64_t h = KP_T_REF | (uint64_t)(i->d & 0x0f) << 8 | (uint64_t)vm->reg_gen[s - vm->stack] << 32;
            memcpy(dst, &h, 8);
            dst->p = s;
            NEXT;
        }
        if ((i->d & 16) && s->tag == KP_T_REF && !KP_NEEDS_DROP(R[i->a])) {
            /* fast path of the case below: the variable's reference to a
             * live value that is no reference, passed on */
            KpValue r = *s;
            if (ref_live(vm, r)) {
                const KpValue *t = r.p;
                if (t->tag != KP_T_REF && t->tag != KP_T_MOVED && t->tag != KP_T_UNSET) {
                    /* (a read-only reference passed on stays one: not a
                     * place a $& or by-value parameter could take over) */
                    r.flags = (uint8_t)((r.flags & (KP_VF_ELEM | KP_VF_BOXED | KP_VF_HEAP | KP_VF_STATIC)) |
                                        ((i->d & KP_VF_MUT) && (s->flags & KP_VF_MUT) ? KP_VF_MUT : 0) |
                                        ((s->flags & KP_VF_MUT) ? (i->d & KP_VF_PLACE) : 0));
                    R[i->a] = r;
                    NEXT;
                }
            }
        }
        SAVEPC();
        if ((i->d & 16) && s->tag == KP_T_REF) {
            /* a variable that holds a reference ($& parameter, kept
             * variable): & of it is that reference */
            KpValue r = *s;
            /* a reference to a place that itself holds a reference (a
             * field `.t : &T`, a copied & parameter) is that reference:
             * there are no references to references */
            bool mut = (s->flags & KP_VF_MUT) != 0;
            for (int guard = 0; guard < 8; guard++) {
                KpValue *t = kp_ref_ok(r) ? (KpValue *)r.p : NULL;
                if (!t || t->tag != KP_T_REF) break;
                r = *t;
                if (!(r.flags & KP_VF_MUT)) mut = false;
            }
            r.flags = (uint8_t)((r.flags & (KP_VF_ELEM | KP_VF_BOXED | KP_VF_HEAP | KP_VF_STATIC)) |
                                ((i->d & KP_VF_MUT) && mut ? KP_VF_MUT : 0) | (mut ? (i->d & KP_VF_PLACE) : 0));
            /* a reference whose referent is gone is reported where it is
             * passed on (as the run-time binding of an argument does) */
            KpValue target = kp_deref(r);
            if (target.tag == KP_T_MOVED || target.tag == KP_T_UNSET) { bad_value(vm, target, NULL); goto error; }
            if (!set_slot(vm, &R[i->a], r)) goto error;
            NEXT;
        }
        fr->refd = true;
        if (s->tag == KP_T_MOVED || (s->tag == KP_T_UNSET && !(i->d & KP_VF_PLACE))) {
            bad_value(vm, *s, reg_name(fr, i->b));
            goto error;
        }
        KpValue r = kp_make_ref(vm, s, NULL, i->d & 0x0f);
        if (!set_slot(vm, &R[i->a], r)) goto error;
        NEXT;
    }
    CASE(CALL) {
        KpValue *fv = &R[i->a];
        int nargs = i->b;
        KpCallDesc *desc = i->c ? &p->calls[i->c - 1] : NULL;
        SAVEPC();
        KpValue fval = kp_deref(*fv);
        if (UNLIKELY(fval.tag == KP_T_TYPE) && ((KpType *)fval.p)->kind == KP_TK_RECORD) {
            KpType *t = fval.p;
            KpValue out;
            if (!construct_dynamic(vm, t, fv + 1, nargs, desc, &out)) goto error;
            *fv = out;
            NEXT;
        }
        KpOverload *ov;
        if (UNLIKELY(fval.tag != KP_T_FUNC)) {
            KpRecord *cr = as_closure(fval);
            if (cr) {
                ov = cr->type->closure;
                if (LIKELY(ov->proto && (!desc || !desc->nnamed) && closure_args_borrowed(vm, cr, fv + 1, nargs))) {
                    goto fast_args; /* (nargs: the caller's arguments) */
                }
                int ready = closure_args(vm, cr, fv + 1, &nargs, desc);
                if (!ready) goto error;
                ov = cr->type->closure;
                if (ready != 1 || !ov->proto) goto bind;
                /* the captures are bound: the caller's arguments take
                 * the fast path of a function of one overload */
                nargs -= ov->literal;
                goto fast_args;
            }
            if (fval.tag == KP_T_MOVED || fval.tag == KP_T_UNSET) bad_value(vm, fval, NULL);
            else kp_vm_error(vm, "cannot call %s", kp_a(kp_value_type_name(vm, fval)));
            goto error;
        }
        KpFunc *f = fval.p;
        if (LIKELY(f->n == 1 && (!desc || (!desc->nnamed && !f->ovs[0]->by_result)))) {
            /* one overload: nothing to select (an expected output type
             * only chooses among overloads; the result is checked after) */
            ov = f->ovs[0];
            if (LIKELY(ov->proto && nargs == ov->nparams)) {
            fast_args:;
                /* (for a function literal, nargs counts the caller's
                 * arguments: the captures after them are bound) */
                /* fast path: every argument already has its parameter's
                 * exact scalar type, or is an implicit borrow of a place
                 * holding one (a call through a function value passes
                 * variables so): by value, the scalar is copied */
                int j = 0;
                for (; j < nargs; j++) {
                    KpValue *av = &fv[1 + j];
                    const KpParam *pp = &ov->params[j];
                    if (pp->mode != KP_PM_VALUE) break;
                    if (av->tag == pp->fast_tag) continue;
                    if (av->tag != KP_T_REF || !(av->flags & KP_VF_PLACE) || !pp->fast_tag) break;
                    const KpValue *pv = av->p;
                    if (pv->tag != pp->fast_tag || !KP_IS_PLAIN(*pv)) break;
                    *av = *pv;
                }
                if (j < nargs) j = args_bind_fast(vm, ov, fv + 1, j, nargs, POS);
                if (j == nargs) {
                push_fast:;
                    KpValue *nb = fv + 1;
                    if (UNLIKELY(vm->nframes >= KP_CALL_LIMIT || nb + ov->proto->nregs >= vm->call_limit)) {
                        kp_vm_error(vm, "stack overflow (%d nested calls)", vm->nframes);
                        goto error;
                    }
                    CHECK_INTERRUPT();
                    KpFrame *nf = &vm->frames[vm->nframes++];
                    nf->proto = ov->proto;
                    nf->ov = ov;
                    nf->pc = ov->proto->code;
                    nf->base = nb;
                    nf->is_defer = false;
                    nf->is_main = false;
                    nf->refd = false;
                    fr = nf;
                    p = nf->proto;
                    pc = nf->pc;
                    R = nb;
                    K = p->k;
                    NEXT;
                }
                nargs += ov->literal; /* (a literal's captures are bound again) */
            }
        } else if (!(ov = select_cached(vm, f, fv + 1, nargs, desc))) {
            goto error;
        } else if (ov->proto && nargs == ov->nparams && !ov->literal && (!desc || !desc->nnamed)) {
            /* the overload chosen: its arguments bound as in the fast path
             * of a function of one overload, when they can be */
            if (args_bind_fast(vm, ov, fv + 1, 0, nargs, POS) == nargs) goto push_fast;
        }
    bind:
        if (!bind_args(vm, ov, fv + 1, &nargs, ov->literal ? NULL : desc, POS)) goto error;
        if (ov->native) {
            KpValue r = kp_unit();
            KpValue *save = vm->native_top;
            vm->native_top = fv + 1 + nargs;
            vm->cur_native = ov;
            bool ok = ov->native(vm, fv + 1, nargs, &r);
            kp_tls_vm = vm; /* a host function may have used another VM */
            vm->native_top = save;
            if (!clear_regs(vm, fv + 1, fv + 1 + nargs)) ok = false;
            if (!ok) { kp_drop(vm, r); goto error; }
            *fv = r;
            NEXT;
        }
        CHECK_INTERRUPT();
        if (!push_frame(vm, ov, fv + 1)) goto error;
        LOADFRAME();
        NEXT;
    }
    CASE(VINDEX) {
        /* v[i, j] on a View with Int indices (stdlib/view.c); anything
         * else runs as the CALLS of #index it is */
        KpValue *fv = &R[i->a];
        KpValue out;
        /* (a view that is a temporary, owned by its register, takes the
         * call: it must be dropped) */
        if (LIKELY(!KP_NEEDS_DROP(*fv) && fv[1].tag == KP_T_REF && kp_view_get_fast(vm, fv + 1, i->b, &out))) {
            for (int q = 1; q <= i->b; q++) fv[q].tag = KP_T_UNSET; /* a reference and Ints */
            *fv = out;
            NEXT;
        }
        goto calls;
    }
    CASE(VSETINDEX) {
        /* v[i, j] = x: the same for #setindex */
        KpValue *fv = &R[i->a];
        if (LIKELY(!KP_NEEDS_DROP(*fv) && fv[1].tag == KP_T_REF)) {
            SAVEPC();
            int r = kp_view_set_fast(vm, fv + 1, i->b);
            if (r < 0) goto error;
            if (LIKELY(r > 0)) {
                for (int q = 1; q <= i->b; q++) fv[q].tag = KP_T_UNSET;
                *fv = kp_unit();
                NEXT;
            }
        }
        goto calls;
    }
    CASE(VGET) {
        /* v[i, j] (or v[i, j, k]) read straight from the registers of a
         * variable v and of Int variables i, j: no reference made,
         * nothing moved.  Done only in the common case (vget_fast), and
         * then the general sequence compiled after the EXTRA word (REF,
         * MOVEs, VINDEX: every check and message) is skipped; otherwise
         * that sequence runs as if VGET were not there. */
        if (LIKELY(vget_fast(vm, i, &R[i->c], &R[pc->a], R, K))) pc += 1 + pc->c;
        else pc++;
        NEXT;
    }
    CASE(VGETK) {
        /* the same where an index is an Int constant (RK operands) */
        if (LIKELY(vget_fast(vm, i, RK(i->c), RK(pc->a), R, K))) pc += 1 + pc->c;
        else pc++;
        NEXT;
    }
    CASE(EXTRA) NEXT; /* (skipped by the instruction it belongs to) */
    CASE(CALLS) {
        /* bound at compile time: no selection; only the arguments the
         * types pass could not prove are bound (checked, converted) */
    calls:;
        KpValue *fv = &R[i->a];
        int nargs = i->b;
        KpCallDesc *desc = &p->calls[i->c - 1];
        KpOverload *ov = desc->ov;
        SAVEPC();
        if (UNLIKELY(KP_NEEDS_DROP(*fv))) { /* R(a) may still hold an earlier result */
            KpValue old = *fv;
            *fv = kp_unset();
            if (!kp_drop(vm, old)) goto error;
        }
        if (desc->check) {
            /* arguments of their by-value parameters' exact scalar types:
             * one tag test each (call_tags_ok); anything else is bound */
            if (UNLIKELY(__atomic_load_n(&desc->fast, __ATOMIC_ACQUIRE) != 1) || UNLIKELY(!call_tags_ok(desc, fv + 1, nargs)))
                if (!bind_bound_args(vm, desc, fv + 1, nargs, POS)) goto error;
        }
        if (LIKELY(!ov->native)) {
            KpProto *np = ov->proto;
            KpValue *nb = fv + 1;
            if (LIKELY(vm->nframes < KP_CALL_LIMIT && nb + np->nregs < vm->call_limit)) {
                /* push_frame, inline (the limits checked are the strictest:
                 * push_frame decides near them, and while unwinding) */
                CHECK_INTERRUPT();
                KpFrame *nf = &vm->frames[vm->nframes++];
                nf->proto = np;
                nf->ov = ov;
                nf->pc = np->code;
                nf->base = nb;
                nf->is_defer = false;
                nf->is_main = false;
                nf->refd = false;
                fr = nf;
                p = np;
                pc = np->code;
                R = nb;
                K = np->k;
                NEXT;
            }
        } else {
            KpValue r = kp_unit();
            KpValue *save = vm->native_top;
            vm->native_top = fv + 1 + nargs;
            vm->cur_native = ov;
            bool ok = ov->native(vm, fv + 1, nargs, &r);
            kp_tls_vm = vm; /* a host function may have used another VM */
            vm->native_top = save;
            /* the arguments: scalars and references (the usual case) need
             * only their registers' generations bumped */
            KpValue *a0 = fv + 1;
            int q = 0;
            while (q < nargs && !KP_NEEDS_DROP(a0[q])) q++;
            if (LIKELY(q == nargs)) {
                uint32_t *gen = vm->reg_gen + (a0 - vm->stack);
                for (q = 0; q < nargs; q++) {
                    gen[q]++;
                    a0[q] = kp_unset();
                }
            } else if (!clear_regs(vm, a0, a0 + nargs)) ok = false;
            if (!ok) { kp_drop(vm, r); goto error; }
            *fv = r;
            NEXT;
        }
        CHECK_INTERRUPT();
        if (!push_frame(vm, ov, fv + 1)) goto error;
        LOADFRAME();
        NEXT;
    }
    CASE(DEINIT) {
        SAVEPC();
        if (i->d == 1) {
            if (!clear_regs(vm, R + i->a, R + i->a + 1)) goto error;
            NEXT;
        }
        KpValue r = R[i->a];
        R[i->a] = kp_unset();
        if (r.tag != KP_T_REF) {
            if (UNLIKELY(vm->trace_own) && TRACED(r)) kp_vm_trace_own(vm, "deinit", r, NULL, 0);
            kp_drop(vm, r);
            NEXT;
        }
        if (UNLIKELY(vm->trace_own) && (r.flags & KP_VF_BOXED) && kp_ref_ok(r)) {
            KpBox *b = (KpBox *)((char *)r.p - offsetof(KpBox, v));
            if (b->manual || b->file) kp_vm_trace_own(vm, "deinit", (KpValue){.tag = KP_T_BOX, .p = b}, NULL, 0);
        }
        int kept = end_kept(vm, r);
        if (kept < 0) goto error;
        if (kept) NEXT;
        KpValue *s = r.p;
        if (s->tag == KP_T_REF) { /* deinit through a reference variable */
            KpValue t = *s;
            if ((kept = end_kept(vm, t)) < 0) goto error;
            if (kept) NEXT;
            if (!(t.flags & KP_VF_MUT)) { kp_vm_error(vm, "cannot deinit through a read-only reference"); goto error; }
            s = t.p;
        }
        if (r.flags & KP_VF_ELEM) { kp_vm_error(vm, "cannot deinit a list or map element in place; use pop(...) or remove(...)"); goto error; }
        if (s->tag == KP_T_MOVED || s->tag == KP_T_UNSET) { bad_value(vm, *s, NULL); goto error; }
        if (is_locked(*s)) { kp_vm_error(vm, "cannot deinit a value while a for loop is iterating over it"); goto error; }
        KpValue v = *s;
        if (UNLIKELY(vm->trace_own) && TRACED(v)) kp_vm_trace_own(vm, "deinit", v, s, 0);
        s->tag = KP_T_MOVED;
        s->flags = KP_VF_DEINIT;
        s->aux = POS;
        s->p = NULL;
        if (!kp_drop(vm, v)) goto error;
        NEXT;
    }
    CASE(RET) {
        KpValue *rv = &R[i->a];
        if (LIKELY((p->ret_tags >> rv->tag) & 1)) {
            /* a scalar of the declared type: nothing to take or convert
             * (the register keeps its copy: plain values need no drop) */
            vcopy(&ret_v, rv);
            goto ret_frame;
        }
        SAVEPC();
        ret_v = *rv;
        *rv = kp_unset();
        if (ret_v.tag == KP_T_REF) {
            KpValue *t = ret_v.p;
            if (ret_v.flags & KP_VF_PLACE) {
                KpValue x;
                if (!take_from(vm, ref_slot_err(vm, ret_v), &x, POS, (ret_v.flags & KP_VF_ELEM) != 0, NULL)) goto error;
                ret_v = x;
            } else if (t >= R && t < R + p->nregs) {
                kp_vm_error(vm, "'%s' returns a reference to its own local variable, which is deinitialized on return",
                            p->name);
                goto error;
            }
        }
        if (ret_v.tag == KP_T_REF && p->ret && p->ret->kind == KP_TK_SCALAR && kp_ref_ok(ret_v)) {
            /* `return n` of a `$&Int` (or `&String`) parameter from a
             * function returning Int (String): the value is copied */
            KpValue d = *(KpValue *)ret_v.p;
            if (d.tag == KP_T_STR || KP_IS_PLAIN(d)) {
                if (!kp_clone(vm, d, &ret_v)) goto error;
            }
        }
        if (p->ret && !(p->ret->kind == KP_TK_SCALAR && p->ret->tag == ret_v.tag)) {
            const char *why;
            if (!kp_type_coerce(vm, p->ret, &ret_v, &why)) {
                kp_vm_error(vm, "'%s' must return %s, but the value is %s%s%s", p->name, p->ret->name, kp_value_type_name(vm, ret_v),
                            why ? ": " : "", why ? why : "");
                kp_drop(vm, ret_v);
                goto error;
            }
        }
    ret_frame: {
        /* the frame's registers: the ones that may own are dropped, and
         * references into the frame die with it (ret_clear); a frame of
         * plain values (p->own_regs 0) with no reference made into it has
         * nothing to do.  The registers left as they are hold nothing to
         * drop (vm.h's invariant); code reads no register it has not
         * written, so the next frame there does not see them. */
        bool ok = true;
        if (UNLIKELY(p->own_regs | fr->refd)) {
            /* a first look: the OR of the tags is below KP_T_STR when no
             * register owns (it may be above when none does: then the
             * slow path looks at each) */
            unsigned acc = KP_T_STR;
            uint64_t m = p->own_regs;
            if (LIKELY(!fr->refd && m != ~(uint64_t)0)) {
                acc = 0;
                if (LIKELY(!(m >> 63))) { /* only the registers that may own */
                    for (; m; m &= m - 1) acc |= R[__builtin_ctzll(m)].tag;
                } else {
                    KpValue *q = R + p->nregs;
                    for (; q - R >= 2; q -= 2) acc |= q[-1].tag | q[-2].tag;
                    if (q > R) acc |= R[0].tag;
                }
            }
            if (UNLIKELY(acc >= KP_T_STR)) {
                SAVEPC();
                ok = ret_clear(vm, fr);
            }
        }
        vcopy(&R[-1], &ret_v);
        vm->nframes--;
        if (!ok) {
            /* a deinit of this frame failed: report it in the caller */
            if (vm->nframes <= base_depth) { locate_error(vm); return false; }
            LOADFRAME();
            goto error;
        }
        if (vm->nframes <= base_depth) return true;
        LOADFRAME();
        NEXT;
    }
    }
    CASE(RET0) {
        vset_i(&ret_v, KP_T_UNIT, 0);
        goto ret_frame;
    }
    CASE(CHECK) {
        KpType *t = K[i->b].p;
        KpValue *v = &R[i->a];
        const char *why;
        if (LIKELY(t->kind == KP_TK_SCALAR && v->tag == t->tag && t != vm->t_float32)) NEXT; /* an exact scalar (Float32 rounds) */
        /* a live reference to a record of the type (`x : &T = ...`) */
        if (t->kind == KP_TK_REF && v->tag == KP_T_REF && (t->refmode != 2 || (v->flags & KP_VF_MUT)) &&
            t->elem && t->elem->kind == KP_TK_RECORD && kp_ref_ok_in(vm, *v)) {
            const KpValue *tv = v->p;
            if (tv->tag == KP_T_RECORD && ((KpRecord *)tv->p)->type == t->elem) NEXT;
        }
        if (LIKELY(kp_type_coerce(vm, t, v, &why))) NEXT;
        SAVEPC();
        if (v->tag == KP_T_MOVED || v->tag == KP_T_UNSET) { bad_value(vm, *v, NULL); goto error; }
        if (i->d == 1) kp_vm_error(vm, "'and' / 'or' need Bool operands, but the value is %s", kp_value_type_name(vm, *v));
        else if (i->c)
            kp_vm_error(vm, "'%s' is declared %s, but the value is %s%s%s", (const char *)K[i->c - 1].p, t->name,
                        kp_value_type_name(vm, *v), why ? ": " : "", why ? why : "");
        else kp_vm_error(vm, "expected %s, but the value is %s", t->name, kp_value_type_name(vm, *v));
        goto error;
    }
    CASE(FORPREP) {
        KpValue *a = &R[i->a];
        SAVEPC();
        KpValue s = kp_deref(a[0]), e = kp_deref(a[1]);
        if (!is_intlike(s.tag) || !is_intlike(e.tag)) {
            kp_vm_error(vm, "a range needs Int bounds, not %s..%s", kp_value_type_name(vm, s), kp_value_type_name(vm, e));
            goto error;
        }
        a[0] = kp_int(s.i);
        a[1] = kp_int(e.i);
        if (a[0].i >= a[1].i) { pc += i->sbx; NEXT; }
        if (!set_slot(vm, &a[2], kp_int(a[0].i))) goto error;
        NEXT;
    }
    CASE(FORLOOP) {
        KpValue *a = &R[i->a];
        int64_t n = a[0].i + 1;
        if (n < a[1].i) {
            a[0].i = n;
            if (UNLIKELY(KP_NEEDS_DROP(a[2]))) { SAVEPC(); if (!set_slot(vm, &a[2], kp_int(n))) goto error; }
            else a[2] = kp_int(n);
            CHECK_INTERRUPT();
            pc += i->sbx;
        }
        NEXT;
    }
    CASE(ITERPREP) {
        SAVEPC();
        KpValue c = kp_deref(R[i->a]);
        if (c.tag != KP_T_LIST && c.tag != KP_T_MAP && c.tag != KP_T_STR) {
            if (c.tag == KP_T_MOVED || c.tag == KP_T_UNSET) bad_value(vm, c, NULL);
            else kp_vm_error(vm, "cannot iterate over %s (for works over ranges, lists, maps and strings)", kp_a(kp_value_type_name(vm, c)));
            goto error;
        }
        if ((i->d & 1) && R[i->a].tag == KP_T_REF && !(R[i->a].flags & (KP_VF_MUT | KP_VF_PLACE))) {
            kp_vm_error(vm, "cannot iterate mutably ($&) through a read-only reference");
            goto error;
        }
        KpObj *o = c.p;
        if (c.tag == KP_T_STR) {
            /* a string: the loop holds a count of it (strings are immutable) */
            kp_str_incref(c.p);
            KpValue it = kp_ptr(KP_T_ITER, o);
            it.aux = 0;
            R[i->a + 1] = it;
            NEXT;
        }
        if (__atomic_load_n(&o->lock, __ATOMIC_RELAXED) == UINT16_MAX) {
            kp_vm_error(vm, "too many nested loops over one value");
            goto error;
        }
        kp_obj_lock_add(o, 1);
        KpValue it = kp_ptr(KP_T_ITER, o);
        it.aux = 0;
        R[i->a + 1] = it;
        NEXT;
    }
    CASE(ITERNEXT) {
        KpValue *a = &R[i->a];
        KpObj *o = a[1].p;
        uint32_t idx = a[1].aux;
        if (LIKELY(o->kind == KP_T_LIST && !(i->d & 7))) {
            /* one variable, by value, over a list: a plain element is
             * copied (the general case below does the same) */
            KpList *l = (KpList *)o;
            if (LIKELY(idx < l->len && KP_IS_PLAIN(l->items[idx]) && !KP_NEEDS_DROP(a[2]))) {
                a[1].aux = idx + 1;
                vcopy(&a[2], &l->items[idx]);
                CHECK_INTERRUPT();
                pc += i->sbx;
                NEXT;
            }
        }
        uint8_t mode = i->d & 3;
        bool two = (i->d & 4) != 0;
        KpValue *e = NULL, key = kp_unset();
        if (o->kind == KP_T_STR) {
            /* for c in s: each character as a string; for i, c in s: its byte offset */
            KpString *str = (KpString *)o;
            if (idx >= str->len) NEXT;
            SAVEPC();
            int k = kp_str_char_len(str, idx);
            KpString *ch = kp_str_new(vm, vm->ctx, str->data + idx, (size_t)k);
            if (!ch) goto error;
            a[1].aux = idx + (uint32_t)k;
            KpValue cv = kp_ptr(KP_T_STR, ch);
            if (two) {
                if (!set_slot(vm, &a[3], cv)) goto error;
                cv = kp_int(idx);
            }
            if (!set_slot(vm, &a[2], cv)) goto error;
            CHECK_INTERRUPT();
            pc += i->sbx;
            NEXT;
        }
        if (o->kind == KP_T_LIST) {
            KpList *l = (KpList *)o;
            if (idx < l->len) { e = &l->items[idx]; key = kp_int(idx); }
            idx++;
        } else {
            KpMap *m = (KpMap *)o;
            while (idx < m->nentries && m->entries[idx].key.tag == KP_T_UNSET) idx++;
            if (idx < m->nentries) { e = &m->entries[idx].val; key = m->entries[idx].key; }
            idx++;
        }
        if (!e) NEXT; /* done: fall through to ITEREND */
        a[1].aux = idx;
        SAVEPC();
        KpValue v;
        if (mode == 2) {
            v = *e;
            if (KP_IS_MOVABLE(v) || v.tag == KP_T_STR) { e->tag = KP_T_MOVED; e->aux = POS; e->p = NULL; }
        } else if (mode == 1 || KP_IS_MOVABLE(*e)) {
            v = kp_make_ref(vm, e, o, (uint8_t)(KP_VF_ELEM | (mode == 1 ? KP_VF_MUT : 0)));
            if (v.tag != KP_T_REF) goto error; /* out of memory */
        } else {
            v = *e;
            if (v.tag == KP_T_STR) kp_str_incref(v.p);
        }
        if (o->kind == KP_T_MAP && !two) {
            /* one variable over a map: the key */
            if (mode != 2 && v.tag == KP_T_STR) kp_drop(vm, v);
            v = key;
            if (v.tag == KP_T_STR) kp_str_incref(v.p);
        } else if (two) {
            if (key.tag == KP_T_STR) kp_str_incref(key.p);
            if (!set_slot(vm, &a[3], v)) goto error;
            v = key;
        }
        if (!set_slot(vm, &a[2], v)) goto error;
        CHECK_INTERRUPT();
        pc += i->sbx;
        NEXT;
    }
    CASE(ITEREND) {
        SAVEPC();
        if (!clear_regs(vm, R + i->a, R + i->a + 4)) goto error;
        NEXT;
    }
    CASE(DEFEREND) {
        (void)base_depth;
        return true;
    }
    CASE(HALT) {
        return true;
    }
#ifndef KP_COMPUTED_GOTO
    default:
        kp_vm_error(vm, "internal: bad opcode %d", i->op);
        goto error;
    }
#endif

error:
    fr->pc = pc;
    if (!vm->err_located) locate_error(vm);
    if (vm->err_caught && catchable(vm)) {
        /* the innermost try block of this run's frames that covers the
         * error (one in a frame below them catches it when this run's
         * caller, a C function or a deinit, passes the error on) */
        for (int d = vm->nframes - 1; d >= base_depth; d--) {
            const KpTryInfo *t = frame_try(&vm->frames[d]);
            if (!t) continue;
            if (catch_error(vm, d, t)) {
                LOADFRAME();
                NEXT;
            }
            break;
        }
    }
    {
        bool was = vm->unwinding;
        vm->unwinding = true;
        while (vm->nframes > base_depth) {
            KpFrame *f = &vm->frames[vm->nframes - 1];
            unwind_frame(vm, f->is_main ? f->globals : 0, NULL);
            vm->nframes--;
        }
        vm->unwinding = was;
    }
    return false;
}

/* ------------------------------------------------------------ entry */

int kp_vm_run_main(KpVM *vm, KpProto *proto) {
    int depth = vm->nframes; /* > 0: called from a C function (re-entrant) */
    if (vm->trace_own && proto->src && !depth) vm->trace_file = proto->src->name; /* (interned) */
    if (vm->stack + proto->nregs + 16 >= vm->stack_end || depth >= KP_MAX_FRAMES - 1) {
        /* nothing ran: reported here, at the chunk's start */
        if (depth >= KP_MAX_FRAMES - 1) kp_vm_error(vm, "program too large: %d frames in use", depth);
        else
            kp_vm_error(vm, "program too large: %u registers (the top-level variables so far and this chunk's), "
                            "the value stack holds %zu", proto->nregs, (size_t)(vm->stack_end - vm->stack) - 16);
        const KpSource *src = proto->src;
        KpDiagSink sink = {vm->write_err, vm->on_diagnostic, vm->write_ud};
        kp_diag_emit(&sink, src, KP_SEVERITY_ERROR, KP_ERR_RUNTIME, "runtime error", 1, 1,
                     vm->err.data ? vm->err.data : "program too large", NULL, 0, NULL, 0);
        char head[300];
        snprintf(head, sizeof head, "%.256s:1:1: ", src ? src->name : "?");
        kp_buf_prepend(vm, &vm->err, head);
        vm->err_located = true;
        return KP_ERR_RUNTIME;
    }
    vm->status = KP_OK;
    kp_buf_reset(&vm->err);
    vm->err_located = false;
    vm->reraise.set = false;
    if (!depth) {
        atomic_fetch_and(&vm->interrupt, ~KP_ATTN_INTERRUPT);
        vm->exiting = false;
        for (uint32_t r = vm->main_clean; r < proto->nregs; r++)
            if (!KP_NEEDS_DROP(vm->stack[r])) vm->stack[r] = kp_unset();
    }
    KpFrame *f = &vm->frames[vm->nframes++];
    f->proto = proto;
    f->ov = NULL;
    f->pc = proto->code;
    f->base = vm->stack;
    f->is_defer = false;
    f->is_main = true;
    f->refd = true;
    f->globals = proto->temps;
    vm->ran_since_finish = true;
    bool ok = execute(vm, depth);
    vm->nframes = depth;
    if (!depth) vm->main_clean = proto->temps;
    if (!ok) {
        /* main's temporaries were dropped by the unwinding */
        vm->status = vm->exiting ? KP_EXIT : KP_ERR_RUNTIME;
        return vm->status;
    }
    /* main's temporaries (registers above the globals) die with the chunk:
     * a value a REPL line left in one (the copy of `s := "a" + "b"`) is
     * dropped now, not when a later chunk happens to reuse the register */
    for (uint32_t r = proto->temps; r < proto->nregs; r++) {
        KpValue v = vm->stack[r];
        if (v.tag == KP_T_UNSET) continue;
        vm->stack[r] = kp_unset();
        vm->reg_gen[r]++;
        if (KP_NEEDS_DROP(v) && !kp_drop(vm, v)) return KP_ERR_RUNTIME;
    }
    return KP_OK;
}

KpValue *kp_vm_stack_top(KpVM *vm) { return stack_top(vm); }

void kp_dump_proto(KpVM *vm, const KpProto *p) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "== %s (%u registers, %u constants) ==\n", p->name, p->nregs, p->nk);
    vm->write_err(vm->write_ud, buf, (size_t)n);
    for (uint32_t j = 0; j < p->ncode; j++) {
        const KpInstr *i = &p->code[j];
        n = snprintf(buf, sizeof buf, "%5u  %4u:%-3u %-9s a=%u b=%u c=%u d=%u sbx=%d\n", j, p->lines[j].line,
                     p->lines[j].col, kp_opcode_names[i->op], i->a, i->b, i->c, i->d, i->sbx);
        vm->write_err(vm->write_ud, buf, (size_t)n);
    }
}
