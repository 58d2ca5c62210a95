/*
 * parallel.c — one script function on worker threads.
 *
 * Design.  Lua, Wren and CPython run one thread per interpreter; Keep can
 * do better because of what its ownership rules already guarantee: a `&`
 * borrow is read-only and a `$&` borrow is exclusive.  A parallel call
 * (parallel_map, parallel_for: stdlib/parallel.c) gives each worker only
 * what the rules make safe to share — `&` borrows of the shared data, or
 * one `$&` element each — and the compiler refuses a worker function that
 * writes a captured variable or a top-level one (compiler/parcheck.c), so
 * a worker writes nothing another one reads.  What is left to the VM is
 * the machinery the workers share without the script knowing:
 *
 *   - A worker is a copy of the running VM (struct copy, as a Lua thread
 *     is a lua_State over one global_State) with its own registers — a
 *     window of the VM's value stack above every live register, so the
 *     globals, the callers' registers and the references into them stay
 *     where they are — its own frames (the caller's, copied, then its
 *     own: a worker's trace shows where the parallel call was made), its
 *     own error buffers, drop work stack and interrupt word.  There is no
 *     global interpreter lock: workers run bytecode at once.  The compiled
 *     code, the types and the globals are shared, read-only.
 *   - Memory: a worker allocates from a thread-safe allocator
 *     (kp_par_allocator): the VM's own ThreadLocalAllocator over the root,
 *     whose per-thread caches take no lock on the fast path, or the
 *     script's thread-safe context allocator.  What a worker returns stays
 *     where it was allocated: moving it to the caller is moving the value,
 *     no copy.
 *   - What the VM shares between workers under one lock (KpParState.lock,
 *     recursive): the block table of checked references (object.c; grown
 *     before the workers start, so readers need no lock), and every
 *     allocator that is not thread-safe — the host's, the runtime tables',
 *     the root, a script's arena a shared list was made in, which a worker
 *     calls when it grows an element it was given — as alloc.c takes the
 *     lock around them on a worker's thread (kp_alloc_serial).  Strings'
 *     refcounts and loop locks count atomically on a worker's thread
 *     (object.h kp_tls_par).
 *   - Stopping: the calling thread waits; the first worker that fails
 *     sets every other worker's KP_ATTN_STOP (seen at their next call or
 *     backward jump, where interrupts are seen), an interrupt of the VM is
 *     passed on to every worker, and once all have unwound (their deinits
 *     and defers run) the first error becomes the caller's
 *     (kp_vm_adopt_error): reported, or caught by a `try` around the call.
 *
 * Indices are handed out in chunks from one atomic counter (dynamic
 * scheduling, as OpenMP's schedule(dynamic)): rows of a Mandelbrot cost
 * unevenly.  With one worker (KpConfig.threads = 1, a stack too small for
 * more windows, or a parallel call made inside a worker) the same worker
 * code runs on the calling thread, in index order, with the same rules.
 */
#include "parallel.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../alloc/alloc.h"

/* What parallel calls keep for the VM's life. */
struct KpParState {
    struct KpParShared shared; /* root and the lock: a worker's vm->par */
    KpThreadLocal tl;          /* the worker allocator over the root */
    KpAllocator tl_a;
    bool tl_ok;
};

static struct KpParState *par_state(KpVM *vm) {
    if (vm->pstate) return vm->pstate;
    struct KpParState *ps = kp_alloc(vm->host, sizeof *ps, 16, NULL);
    if (!ps) {
        kp_vm_error(vm, "out of memory: no room for the workers of a parallel call");
        return NULL;
    }
    memset(ps, 0, sizeof *ps);
    /* recursive: an allocator called under it calls its backing, and the
     * block table's functions may allocate (alloc.h kp_alloc_serial) */
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_settype(&at, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&ps->shared.lock, &at);
    pthread_mutexattr_destroy(&at);
    ps->shared.root = vm;
    vm->pstate = ps;
    return ps;
}

void kp_par_free(KpVM *vm) {
    struct KpParState *ps = vm->pstate;
    if (!ps) return;
    if (ps->tl_ok) kp_tl_deinit(&ps->tl);
    pthread_mutex_destroy(&ps->shared.lock);
    kp_free(vm->host, ps, sizeof *ps, 16, NULL);
    vm->pstate = NULL;
}

void kp_par_release(KpVM *vm) {
    struct KpParState *ps = vm->pstate;
    if (!ps || !ps->tl_ok || __atomic_load_n(&ps->tl_a.stats.live_count, __ATOMIC_RELAXED) != 0) return;
    kp_tl_deinit(&ps->tl);
    ps->tl_ok = false;
}

KpAllocator *kp_par_allocator(KpVM *vm, const char *who) {
    KpAllocator *ctx = vm->ctx;
    if (vm->par) return ctx; /* inside a worker: its own */
    if (ctx == vm->heap) {
        struct KpParState *ps = par_state(vm);
        if (!ps) return NULL;
        if (!ps->tl_ok) {
            if (!kp_tl_init(&ps->tl, vm->heap, &ps->tl_a)) {
                kp_vm_error(vm, "out of memory: no room for the workers' allocator of %s", who);
                return NULL;
            }
            ps->tl_a.name = vm->heap->name;
            ps->tl_ok = true;
        }
        return &ps->tl_a;
    }
    if (ctx->flags & KP_ALLOC_THREADSAFE) return ctx;
    kp_vm_error(vm, "%s: the workers cannot allocate from %s, which is not thread-safe; "
                    "make the call under a ThreadLocalAllocator (`using tl { ... }`)",
                who, kp_a(ctx->name ? ctx->name : "this allocator"));
    return NULL;
}

/* ------------------------------------------------------------ workers */

typedef struct Section Section;

typedef struct Worker {
    KpVM vm;          /* the copy it runs on */
    Section *sec;
    int idx;
    bool ok;
    bool started;     /* a thread runs it (else: the calling thread did) */
    pthread_t th;
} Worker;

struct Section {
    KpParJob *job;
    Worker *ws;
    int nw;
    int64_t chunk;
    _Atomic int64_t next;  /* the next index to hand out */
    _Atomic int stop;      /* a worker failed: the others take no more */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;           /* threads not finished (under mu) */
    int failed;            /* the first worker that failed, or -1 (under mu) */
    bool by_value;         /* MAP: f takes its scalar element by value */
    int arity;             /* EACH: f's parameters (1: $&x, 2: i, $&x) */
};

KpOverload *kp_par_fn_overload(KpValue fn) {
    KpFunc *f = NULL;
    if (fn.tag == KP_T_FUNC) f = fn.p;
    else if (fn.tag == KP_T_RECORD && ((KpRecord *)fn.p)->type->closure)
        f = ((KpRecord *)fn.p)->type->closure->func;
    return f && f->n == 1 ? f->ovs[0] : NULL;
}

/* Calls f for index k on vm (a worker, or the worker a nested call runs
 * on).  False with vm's error set. */
static bool run_item(KpVM *vm, const Section *s, int64_t k) {
    const KpParJob *j = s->job;
    KpValue args[2], out = kp_unit();
    int nargs = 1;
    if (j->kind == KP_PAR_RANGE) {
        args[0] = kp_int(k);
    } else {
        KpValue *slot = &j->src->items[k];
        if (j->kind == KP_PAR_MAP && s->by_value && slot->tag != KP_T_REF && !KP_NEEDS_DROP(*slot)) args[0] = *slot;
        else args[0] = kp_make_ref(vm, slot, &j->src->h, j->kind == KP_PAR_EACH ? KP_VF_MUT : 0);
        if (args[0].tag == KP_T_UNSET) return false; /* kp_make_ref failed (the error is set) */
        if (j->kind == KP_PAR_EACH && s->arity == 2) {
            args[1] = args[0];
            args[0] = kp_int(k);
            nargs = 2;
        }
    }
    if (!kp_vm_call_value(vm, j->fn, args, nargs, &out)) return false;
    if (j->dst) j->dst->items[k - j->from] = out;
    else if (!kp_drop(vm, out)) return false;
    return true;
}

static void stop_all(Section *s, int except) {
    atomic_store(&s->stop, 1);
    for (int i = 0; i < s->nw; i++)
        if (i != except) atomic_fetch_or(&s->ws[i].vm.interrupt, KP_ATTN_STOP);
}

static void run_worker(Worker *w) {
    Section *s = w->sec;
    KpParJob *j = s->job;
    KpVM *prev = kp_tls_vm;
    bool prev_par = kp_tls_par;
    pthread_mutex_t *prev_serial = kp_alloc_serial;
    kp_tls_vm = &w->vm;
    kp_tls_par = true;
    kp_alloc_serial = &w->vm.par->lock;
    w->ok = true;
    while (w->ok && !atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        int64_t k0 = atomic_fetch_add(&s->next, s->chunk);
        if (k0 >= j->to) break;
        int64_t k1 = k0 + s->chunk < j->to ? k0 + s->chunk : j->to;
        for (int64_t k = k0; k < k1 && w->ok; k++) w->ok = run_item(&w->vm, s, k);
    }
    kp_tls_vm = prev;
    kp_tls_par = prev_par;
    /* a worker thread keeps the lock to its end: its ThreadLocalAllocator
     * caches are orphaned at its exit, giving slabs back to the root */
    if (!w->started) kp_alloc_serial = prev_serial;
    pthread_mutex_lock(&s->mu);
    if (!w->ok && s->failed < 0) {
        s->failed = w->idx;
        stop_all(s, w->idx);
    }
    s->running--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg) {
    run_worker(arg);
    return NULL;
}

/* Makes w a worker copy of vm with registers [lo, hi). */
static bool worker_init(Worker *w, KpVM *vm, Section *s, KpValue *lo, KpValue *hi, KpAllocator *alloc) {
    struct KpParState *ps = vm->pstate;
    KpVM *c = &w->vm;
    /* everything but the interrupt word, which another thread may be
     * writing (kp_vm_interrupt): the worker starts with its own */
    size_t at = offsetof(KpVM, interrupt), after = at + sizeof vm->interrupt;
    memcpy(c, vm, at);
    memcpy((char *)c + after, (const char *)vm + after, sizeof *c - after);
    w->sec = s;
    c->par = &ps->shared;
    c->frames = kp_alloc(vm->host, sizeof(KpFrame) * KP_MAX_FRAMES, 16, NULL);
    c->err = (KpBuf){0};
    c->trace = (KpBuf){0};
    c->scratch = (KpBuf){0};
    c->dstack = (KpValueStack){0};
    if (!c->frames || !kp_buf_reserve(c, &c->err, KP_ERR_RESERVE) || !kp_buf_reserve(c, &c->trace, KP_TRACE_RESERVE))
        return false;
    memcpy(c->frames, vm->frames, sizeof(KpFrame) * (size_t)vm->nframes);
    c->native_top = lo;
    c->stack_end = hi;
    c->call_limit = kp_vm_call_limit(c);
    c->heap = c->ctx = alloc;
    c->nblocks = vm->cap_blocks; /* the whole table: entries not in use are dead */
    atomic_store(&c->interrupt, 0);
    c->budget = -1;
    c->status = KP_OK;
    c->err_located = false;
    c->err_head = 0;
    c->err_caught = false;
    c->reraise.set = false;
    c->unwinding = c->catching = c->exiting = false;
    return true;
}

static void worker_free(Worker *w, KpVM *vm, int64_t views_before) {
    KpVM *c = &w->vm;
    kp_tls_vm = c;
    kp_drop_stack_free(c);
    kp_tls_vm = vm;
    kp_buf_free(c, &c->err);
    kp_buf_free(c, &c->trace);
    kp_buf_free(c, &c->scratch);
    if (c->frames) kp_free(vm->host, c->frames, sizeof(KpFrame) * KP_MAX_FRAMES, 16, NULL);
    if (w->sec) vm->live_views += c->live_views - views_before; /* Readers and Views it left */
}

/* Registers a worker needs at least: a call's reserve for unwinding, and
 * room to run in. */
#define KP_PAR_MIN_WINDOW (65536 + 4096 + 16384)

bool kp_par_run(KpVM *vm, KpParJob *job) {
    if (job->to <= job->from) return true;
    Section s;
    memset(&s, 0, sizeof s);
    s.job = job;
    s.failed = -1;
    KpOverload *ov = kp_par_fn_overload(job->fn);
    s.by_value = ov && ov->nparams - ov->literal >= 1 && ov->params[0].mode == KP_PM_VALUE;
    s.arity = ov ? ov->nparams - ov->literal : 1;
    if (job->kind == KP_PAR_EACH && s.arity != 1 && s.arity != 2)
        return kp_vm_error(vm, "%s: the function must take one parameter ($&element) or two (index, $&element), "
                               "not %d", job->who, s.arity);
    int64_t n = job->to - job->from;
    if (vm->par) {
        /* a parallel call in a worker: on that worker, in order */
        for (int64_t k = job->from; k < job->to; k++)
            if (!run_item(vm, &s, k)) return false;
        return true;
    }
    KpAllocator *alloc = kp_par_allocator(vm, job->who);
    if (!alloc) return false;
    struct KpParState *ps = par_state(vm);
    if (!ps) return false;
    /* workers: as many as asked, items and stack windows allow */
    KpValue *top = kp_vm_stack_top(vm) + 16;
    KpValue *end = vm->stack_end - 65536 - 1024; /* the caller's own reserve */
    int64_t room = end > top ? (int64_t)(end - top) : 0;
    int nw = vm->threads > 0 ? vm->threads : 1;
    if ((int64_t)nw > n) nw = (int)n;
    if ((int64_t)nw > room / KP_PAR_MIN_WINDOW) nw = (int)(room / KP_PAR_MIN_WINDOW);
    if (nw < 1) return kp_vm_error(vm, "stack overflow: no room for the worker of %s", job->who);
    /* the block table is grown now: workers never move it.  Room for the
     * blocks of what the workers make (recycled as it dies) and for a few
     * per shared element — a reference into an element (`&p.name`) gives
     * it an entry, kept while it lives, as on one thread */
    int64_t spare = 65536 + 4 * n;
    if (spare > ((int64_t)1 << 26)) spare = (int64_t)1 << 26;
    if (!kp_blocks_reserve(vm, (uint32_t)spare)) return kp_vm_error(vm, "out of memory: no room to track references in %s", job->who);
    if (job->src && !kp_make_ref(vm, &job->src->items[0], &job->src->h, 0).p) return false; /* its block, made here */
    Worker *ws = kp_alloc(vm->host, sizeof(Worker) * (size_t)nw, 16, NULL);
    if (!ws) return kp_vm_error(vm, "out of memory: no room for the workers of %s", job->who);
    memset(ws, 0, sizeof(Worker) * (size_t)nw);
    s.ws = ws;
    s.nw = nw;
    s.chunk = n / ((int64_t)nw * 16);
    if (s.chunk < 1) s.chunk = 1;
    atomic_store(&s.next, job->from);
    int64_t views = vm->live_views;
    int64_t win = room / nw;
    bool ok = true;
    for (int i = 0; i < nw && ok; i++) {
        ws[i].idx = i;
        ok = worker_init(&ws[i], vm, &s, top + win * i, top + win * (i + 1), alloc);
    }
    if (!ok) {
        for (int i = 0; i < nw; i++) worker_free(&ws[i], vm, views);
        kp_free(vm->host, ws, sizeof(Worker) * (size_t)nw, 16, NULL);
        return kp_vm_error(vm, "out of memory: no room for the workers of %s", job->who);
    }
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    /* worker 0 on a thread too when there are several: the calling thread
     * watches for the VM's interrupt */
    s.running = nw;
    if (nw == 1) {
        run_worker(&ws[0]);
    } else {
        for (int i = 0; i < nw; i++) {
            ws[i].started = true; /* (read by the thread: set before it starts) */
            if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0)
                ws[i].started = false; /* no thread: the calling thread runs it after the others started */
        }
        for (int i = 0; i < nw; i++)
            if (!ws[i].started) run_worker(&ws[i]);
        pthread_mutex_lock(&s.mu);
        bool passed_interrupt = false;
        while (s.running > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s.cv, &s.mu, &ts);
            if (!passed_interrupt && (atomic_load(&vm->interrupt) & KP_ATTN_INTERRUPT)) {
                passed_interrupt = true;
                atomic_fetch_and(&vm->interrupt, ~KP_ATTN_INTERRUPT);
                for (int i = 0; i < nw; i++) atomic_fetch_or(&ws[i].vm.interrupt, KP_ATTN_INTERRUPT);
            }
        }
        pthread_mutex_unlock(&s.mu);
        for (int i = 0; i < nw; i++)
            if (ws[i].started) pthread_join(ws[i].th, NULL);
    }
    ok = s.failed < 0;
    if (!ok) {
        KpVM *fw = &ws[s.failed].vm;
        if (fw->err_located) kp_vm_adopt_error(vm, fw);
        else {
            /* failed before running any of f (binding its arguments): the
             * error is the call's, located here as any other */
            if (!fw->err.len) kp_vm_error_unsaid(fw);
            kp_vm_error_kind(vm, fw->err_kind, "%s", fw->err.data ? fw->err.data : "");
            if (fw->exiting) {
                vm->exiting = true;
                vm->exit_code = fw->exit_code;
            }
        }
    }
    for (int i = 0; i < nw; i++) worker_free(&ws[i], vm, views);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    kp_free(vm->host, ws, sizeof(Worker) * (size_t)nw, 16, NULL);
    return ok;
}
