/* The metrics' per-request update in C: `Metrics.observe_python` (metrics.py), line for line.

   A finished request adds into plain Python lists (a counter's [sum], a histogram's [sum, bucket counts...])
   found through the memo dicts `Metrics` keeps, keyed by the request's raw labels. This code reads the record
   (slotted Finished / Step / Usage: by member offset, _slots.h), builds the same memo keys, looks them up,
   and on a miss calls the same Python method the Python path calls (so label values are resolved, and
   bounded names registered, in the same order). It works in two phases:

   1. Read and check everything, and list the additions to make (cell, index, value) in the order the Python
      code makes them. Python callbacks run here (memo misses, a failed call's breaker gauge, a privacy or
      budget decision's cells): none of them adds to a sum, so doing them again is harmless.
   2. Check every listed cell (a list holding a float at that index), then add, in order. Nothing here can
      fail but an allocation, and no Python code runs until the last addition (then, under --workers, the
      per-request callback: run earlier, it could change a checked cell's list).

   Anything unexpected in phase 1 (another type, an integer past what a double holds exactly, a memo entry
   of another shape, an exception from a callback) and the record goes to `observe_python` instead, which
   adds it up (or raises) as it always did; `fallbacks` counts those. The float additions are the Python
   code's, one by one in the same order (compiled with -ffp-contract=off), so the sums are the same bits. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "_slots.h"

enum {A_answered, A_stream, A_route, A_api, A_status, A_error_type, A_model, A_provider, A_locality,
      A_latency_ms, A_steps, A_kind, A_name, A_ok, A_reason, A_detail, A_usage, A_input_tokens, A_output_tokens,
      A_cache_read_tokens, A_cost, A_ttft_ms, A_cache, A_reference_cost, N_ATTRS};
static const char *const ATTR_NAMES[N_ATTRS] = {
    "answered", "stream", "route", "api", "status", "error_type", "model", "provider", "locality", "latency_ms",
    "steps", "kind", "name", "ok", "reason", "detail", "usage", "input_tokens", "output_tokens",
    "cache_read_tokens", "cost", "ttft_ms", "cache", "reference_cost"};
static PyObject *NAMES[N_ATTRS];
static SlotCache slot_cache[N_ATTRS];
static PyObject *S_call, *S_verdict, *S_role, *S_local, *S_remote, *S_privacy, *S_budget, *S_v, *S_d, *S_c;

static PyObject *get(PyObject *o, int attr) { return slot_get(o, NAMES[attr], &slot_cache[attr]); }

enum {M_REQ, M_CALL, M_VERDICT, M_DECISION, M_CACHE, M_BREAKER, M_GUARD, N_CALLBACKS};

typedef struct {
    PyObject_HEAD
    PyObject *req_memo, *call_memo, *misc_memo;  /* dicts (Metrics._req_memo, ...) */
    PyObject *cb[N_CALLBACKS];                   /* Metrics._req_miss, _call_miss, ... (see Updater_init) */
    PyObject *per_request;                       /* Metrics._per_request_mp under --workers, else None */
    PyObject *fallback;                          /* Metrics.observe_python */
    Py_ssize_t fallbacks;
} Updater;

/* ------------------------------------------------------------------ phase 1: what to add where */

typedef struct {
    PyObject *cell;  /* strong */
    Py_ssize_t i;
    double v;
} Op;

#define STACK_OPS 48

typedef struct {
    Op *ops;
    Py_ssize_t n, cap;
    Op stack[STACK_OPS];
} Ops;

static int add(Ops *o, PyObject *cell, Py_ssize_t i, double v) {
    if (o->n == o->cap) {
        Py_ssize_t cap = o->cap * 2;
        Op *ops = PyMem_Malloc((size_t)cap * sizeof(Op));
        if (ops == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(ops, o->ops, (size_t)o->n * sizeof(Op));
        if (o->ops != o->stack) {
            PyMem_Free(o->ops);
        }
        o->ops = ops;
        o->cap = cap;
    }
    o->ops[o->n++] = (Op){Py_NewRef(cell), i, v};
    return 0;
}

static void ops_free(Ops *o) {
    for (Py_ssize_t k = 0; k < o->n; k++) {
        Py_DECREF(o->ops[k].cell);
    }
    if (o->ops != o->stack) {
        PyMem_Free(o->ops);
    }
}

/* `cell[0] += v` */
static int cell_add(Ops *o, PyObject *cell, double v) { return add(o, cell, 0, v); }

/* `h[0] += v; h[1 + bisect_left(bounds, v)] += 1` for a (h, bounds) pair; bounds are floats. */
static int hist_add(Ops *o, PyObject *hb, double v) {
    if (!PyTuple_CheckExact(hb) || PyTuple_GET_SIZE(hb) != 2 || !PyTuple_CheckExact(PyTuple_GET_ITEM(hb, 1))) {
        return fail("a histogram's memo entry is not (cells, bounds)");
    }
    PyObject *h = PyTuple_GET_ITEM(hb, 0), *b = PyTuple_GET_ITEM(hb, 1);
    Py_ssize_t lo = 0, hi = PyTuple_GET_SIZE(b);
    while (lo < hi) {  /* bisect_left: bounds[mid] < v, as float < float compares (NaN: never less) */
        Py_ssize_t mid = (lo + hi) / 2;
        PyObject *x = PyTuple_GET_ITEM(b, mid);
        if (!PyFloat_CheckExact(x)) {
            return fail("a histogram bound is not a float");
        }
        if (PyFloat_AS_DOUBLE(x) < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (add(o, h, 0, v) < 0) {
        return -1;
    }
    return add(o, h, 1 + lo, 1.0);
}

/* A token count as `h[0] += n` and `bisect_left(bounds, n)` use it: an int (bool included) converted as
   float + int converts it (exact up to 2^53; past that, rounding cannot move it across a bound, all of which
   are small integers or inf), or a float. */
static int as_count(PyObject *o, double *out) {
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    if (PyLong_CheckExact(o) || PyBool_Check(o)) {
        *out = PyLong_AsDouble(o);
        return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
    }
    return fail("token count is not a number");
}

/* Truthiness of a float, or of an int as_double took (exactly): its double is not 0. */
static int truthy_number(double d) { return d != 0.0; }

/* `memo.get(key) or miss(*args)`: new reference. The key is stolen. */
static PyObject *memo(PyObject *dict, PyObject *key, PyObject *miss, PyObject *const *args, Py_ssize_t nargs) {
    if (key == NULL) {
        return NULL;
    }
    PyObject *v = PyDict_GetItemWithError(dict, key);
    if (v != NULL) {
        Py_DECREF(key);
        return Py_NewRef(v);
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *a[6];
    for (Py_ssize_t i = 0; i < nargs; i++) {
        a[i] = args[i];
    }
    a[nargs] = key;
    v = PyObject_Vectorcall(miss, a, (size_t)nargs + 1, NULL);
    Py_DECREF(key);
    return v;
}

static PyObject *tuple_of(Py_ssize_t n, PyObject *const *items) {
    PyObject *t = PyTuple_New(n);
    if (t != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyTuple_SET_ITEM(t, i, Py_NewRef(items[i]));
        }
    }
    return t;
}

/* The decision steps' cells (privacy, budget) and a failed call's breaker: Python, in step order. */
static int is_str(PyObject *o, PyObject *s) { return o == s || (PyUnicode_CheckExact(o) && PyUnicode_Compare(o, s) == 0); }

typedef struct {
    int local_seen, escalated;
    double upstream_ms;
} Walk;

static int call_step(Updater *u, PyObject *rec, PyObject *s, PyObject *route, PyObject *stream, Ops *o, Walk *wk) {
    int rc = -1;
    PyObject *name = NULL, *provider = NULL, *model = NULL, *ok = NULL, *status = NULL, *reason = NULL;
    PyObject *detail = NULL, *role = NULL, *c = NULL, *lat = NULL, *ttft = NULL, *usage = NULL, *n = NULL;
    PyObject *cost = NULL, *locality = NULL;
    if (!(detail = get(s, A_detail)) || !(name = get(s, A_name)) || !(provider = get(s, A_provider)) ||
        !(model = get(s, A_model)) || !(ok = get(s, A_ok)) || !(status = get(s, A_status))) {
        goto done;
    }
    /* role = s.detail.get("role") if s.detail else None */
    if (!PyDict_CheckExact(detail)) {
        fail("detail is not a dict");
        goto done;
    }
    if (PyDict_GET_SIZE(detail) && (role = PyDict_GetItemWithError(detail, S_role)) == NULL && PyErr_Occurred()) {
        goto done;
    }
    role = Py_NewRef(role ? role : Py_None);
    int okt = PyObject_IsTrue(ok);
    if (okt < 0) {
        goto done;
    }
    if (okt) {
        reason = Py_NewRef(Py_None);
    } else if (!(reason = get(s, A_reason))) {
        goto done;
    }
    PyObject *const items[9] = {route, name, provider, model, ok, status, reason, role, stream};
    PyObject *const args[4] = {route, s, role, stream};
    if (!(c = memo(u->call_memo, tuple_of(9, items), u->cb[M_CALL], args, 4))) {
        goto done;
    }
    if (!PyTuple_CheckExact(c) || PyTuple_GET_SIZE(c) != 7) {
        fail("a call's memo entry is not 7 slots");
        goto done;
    }
    /* ms = s.latency_ms or 0.0 */
    double ms = 0.0, v;
    if (!(lat = get(s, A_latency_ms))) {
        goto done;
    }
    if (lat != Py_None && as_double(lat, &ms) < 0) {
        goto done;
    }
    wk->upstream_ms += ms;
    if (hist_add(o, PyTuple_GET_ITEM(c, 0), ms / 1000) < 0 || !(ttft = get(s, A_ttft_ms))) {
        goto done;
    }
    if (PyTuple_GET_ITEM(c, 1) != Py_None && ttft != Py_None) {
        if (as_double(ttft, &v) < 0 || hist_add(o, PyTuple_GET_ITEM(c, 1), v / 1000) < 0) {
            goto done;
        }
    }
    if (!(usage = get(s, A_usage))) {
        goto done;
    }
    if (usage != Py_None) {
        for (int k = 0; k < 3; k++) {
            if (!(n = get(usage, k == 0 ? A_input_tokens : k == 1 ? A_output_tokens : A_cache_read_tokens)) ||
                as_count(n, &v) < 0) {
                goto done;
            }
            int skip = k == 2 && !(PyFloat_CheckExact(n) ? v != 0.0 : PyObject_IsTrue(n));  /* `if u.cache_read_tokens` */
            Py_CLEAR(n);
            if (!skip && hist_add(o, PyTuple_GET_ITEM(c, 2 + k), v) < 0) {
                goto done;
            }
        }
    }
    if (!(cost = get(s, A_cost))) {
        goto done;
    }
    if (cost != Py_None) {  /* `if s.cost: c[5][0] += s.cost` */
        if (as_double(cost, &v) < 0) {
            goto done;
        }
        if (truthy_number(v) && cell_add(o, PyTuple_GET_ITEM(c, 5), v) < 0) {
            goto done;
        }
    }
    if (role != Py_None) {
        if (cell_add(o, PyTuple_GET_ITEM(c, 6), 1.0) < 0) {
            goto done;
        }
    } else {
        if (!(locality = get(s, A_locality))) {
            goto done;
        }
        if (locality != Py_None && !PyUnicode_CheckExact(locality)) {
            fail("locality is not a str");
            goto done;
        }
        if (locality != Py_None && is_str(locality, S_local)) {
            wk->local_seen = 1;
        } else if (okt && locality != Py_None && is_str(locality, S_remote) && wk->local_seen) {
            wk->escalated = 1;
        }
    }
    if (ok == Py_False) {  /* the breaker gauge: a set, harmless to repeat */
        PyObject *r = PyObject_CallFunctionObjArgs(u->cb[M_BREAKER], rec, s, NULL);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    rc = 0;
done:
    Py_XDECREF(name);
    Py_XDECREF(provider);
    Py_XDECREF(model);
    Py_XDECREF(ok);
    Py_XDECREF(status);
    Py_XDECREF(reason);
    Py_XDECREF(detail);
    Py_XDECREF(role);
    Py_XDECREF(c);
    Py_XDECREF(lat);
    Py_XDECREF(ttft);
    Py_XDECREF(usage);
    Py_XDECREF(n);
    Py_XDECREF(cost);
    Py_XDECREF(locality);
    return rc;
}

/* A verdict or a decision: one counter cell, and a privacy or budget decision's own cells. */
static int other_step(Updater *u, PyObject *s, int verdict, PyObject *route, Ops *o) {
    int rc = -1;
    PyObject *name = NULL, *x = NULL, *cell = NULL, *detail = NULL, *cells = NULL;
    if (!(name = get(s, A_name)) || !(x = get(s, verdict ? A_ok : A_reason))) {
        goto done;
    }
    if (verdict) {
        PyObject *const items[3] = {S_v, name, x};
        PyObject *const args[1] = {s};
        cell = memo(u->misc_memo, tuple_of(3, items), u->cb[M_VERDICT], args, 1);
    } else {
        if (!PyUnicode_CheckExact(name)) {
            fail("a decision's name is not a str");
            goto done;
        }
        PyObject *const items[4] = {S_d, route, name, x};
        PyObject *const args[2] = {route, s};
        cell = memo(u->misc_memo, tuple_of(4, items), u->cb[M_DECISION], args, 2);
    }
    if (cell == NULL || cell_add(o, cell, 1.0) < 0) {
        goto done;
    }
    if (!verdict && (is_str(name, S_privacy) || is_str(name, S_budget))) {
        if (!(detail = get(s, A_detail)) ||
            !(cells = PyObject_CallFunctionObjArgs(u->cb[M_GUARD], name, detail, NULL))) {
            goto done;
        }
        if (!PyList_CheckExact(cells)) {
            fail("a guard's cells are not a list");
            goto done;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cells); i++) {
            if (cell_add(o, PyList_GET_ITEM(cells, i), 1.0) < 0) {
                goto done;
            }
        }
    }
    rc = 0;
done:
    Py_XDECREF(name);
    Py_XDECREF(x);
    Py_XDECREF(cell);
    Py_XDECREF(detail);
    Py_XDECREF(cells);
    return rc;
}

static int plan(Updater *u, PyObject *rec, Ops *o) {
    int rc = -1;
    PyObject *a = NULL, *stream = NULL, *route_raw = NULL, *api = NULL, *status = NULL, *etype = NULL;
    PyObject *akey = NULL, *r = NULL, *lat = NULL, *steps = NULL, *kind = NULL, *cache = NULL, *ttft = NULL;
    PyObject *ref = NULL;
    if (!(a = get(rec, A_answered)) || !(stream = get(rec, A_stream)) || !(route_raw = get(rec, A_route)) ||
        !(api = get(rec, A_api)) || !(status = get(rec, A_status)) || !(etype = get(rec, A_error_type))) {
        goto done;
    }
    if (a == Py_None) {
        akey = Py_NewRef(Py_None);
    } else {
        PyObject *am = get(a, A_model), *ap = am ? get(a, A_provider) : NULL, *al = ap ? get(a, A_locality) : NULL;
        if (al != NULL) {
            PyObject *const items[3] = {am, ap, al};
            akey = tuple_of(3, items);
        }
        Py_XDECREF(am);
        Py_XDECREF(ap);
        Py_XDECREF(al);
        if (akey == NULL) {
            goto done;
        }
    }
    PyObject *const items[6] = {route_raw, api, stream, status, etype, akey};
    PyObject *const args[1] = {rec};
    if (!(r = memo(u->req_memo, tuple_of(6, items), u->cb[M_REQ], args, 1))) {
        goto done;
    }
    if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 8) {
        fail("a request's memo entry is not 8 slots");
        goto done;
    }
    PyObject *route = PyTuple_GET_ITEM(r, 0);
    double latency, v;
    if (cell_add(o, PyTuple_GET_ITEM(r, 1), 1.0) < 0 || !(lat = get(rec, A_latency_ms)) ||
        as_double(lat, &latency) < 0 || hist_add(o, PyTuple_GET_ITEM(r, 2), latency / 1000) < 0) {
        goto done;
    }
    Walk wk = {0, 0, 0.0};
    if (!(steps = get(rec, A_steps))) {
        goto done;
    }
    if (!PyList_CheckExact(steps)) {
        fail("steps is not a list");
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(steps); i++) {  /* (re-read: a callback may change the list) */
        PyObject *s = PyList_GET_ITEM(steps, i);
        Py_INCREF(s);
        int ok = (kind = get(s, A_kind)) != NULL;
        if (ok && !PyUnicode_CheckExact(kind)) {
            ok = fail("a step's kind is not a str") == 0;
        }
        if (ok) {
            ok = (is_str(kind, S_call) ? call_step(u, rec, s, route, stream, o, &wk)
                                        : other_step(u, s, is_str(kind, S_verdict), route, o)) == 0;
        }
        Py_DECREF(s);
        Py_CLEAR(kind);
        if (!ok) {
            goto done;
        }
    }
    if (wk.escalated && cell_add(o, PyTuple_GET_ITEM(r, 7), 1.0) < 0) {
        goto done;
    }
    if (!(cache = get(rec, A_cache))) {
        goto done;
    }
    if (cache != Py_None) {
        PyObject *const citems[2] = {S_c, cache};
        PyObject *cell = memo(u->misc_memo, tuple_of(2, citems), u->cb[M_CACHE], args, 1);
        int bad = cell == NULL || cell_add(o, cell, 1.0) < 0;
        Py_XDECREF(cell);
        if (bad) {
            goto done;
        }
    }
    if (PyTuple_GET_ITEM(r, 4) != Py_None) {
        if (cell_add(o, PyTuple_GET_ITEM(r, 4), 1.0) < 0 || !(ttft = get(rec, A_ttft_ms))) {
            goto done;
        }
        if (PyTuple_GET_ITEM(r, 5) != Py_None && ttft != Py_None &&
            (as_double(ttft, &v) < 0 || hist_add(o, PyTuple_GET_ITEM(r, 5), v / 1000) < 0)) {
            goto done;
        }
    }
    if (!(ref = get(rec, A_reference_cost))) {
        goto done;
    }
    if (ref != Py_None) {
        if (as_double(ref, &v) < 0 || (truthy_number(v) && cell_add(o, PyTuple_GET_ITEM(r, 6), v) < 0)) {
            goto done;
        }
    }
    double overhead_ms = latency - wk.upstream_ms;
    if (overhead_ms >= 0 && hist_add(o, PyTuple_GET_ITEM(r, 3), overhead_ms / 1000) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(a);
    Py_XDECREF(stream);
    Py_XDECREF(route_raw);
    Py_XDECREF(api);
    Py_XDECREF(status);
    Py_XDECREF(etype);
    Py_XDECREF(akey);
    Py_XDECREF(r);
    Py_XDECREF(lat);
    Py_XDECREF(steps);
    Py_XDECREF(kind);
    Py_XDECREF(cache);
    Py_XDECREF(ttft);
    Py_XDECREF(ref);
    return rc;
}

/* ------------------------------------------------------------------ phase 2 and the type */

static PyObject *Updater_observe(Updater *u, PyObject *rec) {
    if (u->req_memo == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "metricspack: Updater not initialised");
        return NULL;
    }
    Ops o;
    o.ops = o.stack;
    o.n = 0;
    o.cap = STACK_OPS;
    int ok = plan(u, rec, &o) == 0;
    for (Py_ssize_t k = 0; ok && k < o.n; k++) {  /* every cell a list with a float at its index */
        Op *op = &o.ops[k];
        if (!PyList_CheckExact(op->cell) || op->i >= PyList_GET_SIZE(op->cell) ||
            !PyFloat_CheckExact(PyList_GET_ITEM(op->cell, op->i))) {
            ok = fail("a metric cell is not a list of floats") == 0;
        }
    }
    if (!ok) {  /* nothing added yet: the Python code does this record */
        ops_free(&o);
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
            return NULL;
        }
        PyErr_Clear();
        u->fallbacks++;
        return PyObject_CallOneArg(u->fallback, rec);
    }
    for (Py_ssize_t k = 0; k < o.n; k++) {
        Op *op = &o.ops[k];
        PyObject *old = PyList_GET_ITEM(op->cell, op->i);
        PyObject *sum = PyFloat_FromDouble(PyFloat_AS_DOUBLE(old) + op->v);
        if (sum == NULL) {
            ops_free(&o);
            return NULL;
        }
        PyList_SET_ITEM(op->cell, op->i, sum);
        Py_DECREF(old);
    }
    ops_free(&o);
    /* After the additions: between the checks above and the last addition no Python code runs (the callback
       could change a cell's list). */
    if (u->per_request != Py_None) {
        PyObject *r = PyObject_CallNoArgs(u->per_request);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static int Updater_init(Updater *u, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"req_memo", "call_memo", "misc_memo", "req_miss", "call_miss", "verdict_miss",
                         "decision_miss", "cache_miss", "breaker", "guard_cells", "per_request", "fallback", NULL};
    PyObject *rm, *cm, *mm, *cb[N_CALLBACKS], *per, *fb;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!OOOOOOOOO", kw, &PyDict_Type, &rm, &PyDict_Type, &cm,
                                     &PyDict_Type, &mm, &cb[M_REQ], &cb[M_CALL], &cb[M_VERDICT], &cb[M_DECISION],
                                     &cb[M_CACHE], &cb[M_BREAKER], &cb[M_GUARD], &per, &fb)) {
        return -1;
    }
    for (int i = 0; i < N_CALLBACKS; i++) {
        if (!PyCallable_Check(cb[i])) {
            PyErr_SetString(PyExc_TypeError, "metricspack: the callbacks must be callable");
            return -1;
        }
    }
    if (!PyCallable_Check(fb) || (per != Py_None && !PyCallable_Check(per))) {
        PyErr_SetString(PyExc_TypeError, "metricspack: fallback and per_request must be callable");
        return -1;
    }
    Py_XSETREF(u->req_memo, Py_NewRef(rm));
    Py_XSETREF(u->call_memo, Py_NewRef(cm));
    Py_XSETREF(u->misc_memo, Py_NewRef(mm));
    for (int i = 0; i < N_CALLBACKS; i++) {
        Py_XSETREF(u->cb[i], Py_NewRef(cb[i]));
    }
    Py_XSETREF(u->per_request, Py_NewRef(per));
    Py_XSETREF(u->fallback, Py_NewRef(fb));
    return 0;
}

static int Updater_traverse(Updater *u, visitproc visit, void *arg) {
    Py_VISIT(u->req_memo);
    Py_VISIT(u->call_memo);
    Py_VISIT(u->misc_memo);
    for (int i = 0; i < N_CALLBACKS; i++) {
        Py_VISIT(u->cb[i]);
    }
    Py_VISIT(u->per_request);
    Py_VISIT(u->fallback);
    return 0;
}

static int Updater_clear(Updater *u) {
    Py_CLEAR(u->req_memo);
    Py_CLEAR(u->call_memo);
    Py_CLEAR(u->misc_memo);
    for (int i = 0; i < N_CALLBACKS; i++) {
        Py_CLEAR(u->cb[i]);
    }
    Py_CLEAR(u->per_request);
    Py_CLEAR(u->fallback);
    return 0;
}

static void Updater_dealloc(Updater *u) {
    PyObject_GC_UnTrack(u);
    Updater_clear(u);
    Py_TYPE(u)->tp_free((PyObject *)u);
}

static PyMethodDef Updater_methods[] = {
    {"observe", (PyCFunction)Updater_observe, METH_O,
     "observe(record): add one finished request into the metric cells (Metrics.observe_python, in C)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Updater_members[] = {
    {"fallbacks", T_PYSSIZET, offsetof(Updater, fallbacks), READONLY, "records handed to the Python code"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject UpdaterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tierwise.observability._metricspack.Updater",
    .tp_basicsize = sizeof(Updater),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Adds finished requests into Metrics' cells (see metrics.Metrics.observe_python)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Updater_init,
    .tp_dealloc = (destructor)Updater_dealloc,
    .tp_traverse = (traverseproc)Updater_traverse,
    .tp_clear = (inquiry)Updater_clear,
    .tp_methods = Updater_methods,
    .tp_members = Updater_members,
};

static struct PyModuleDef metricspack_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_metricspack",
    .m_doc = "A finished request's metric sums, added in C (see metrics.py).",
    .m_size = -1,
};

#define INTERN(var, s) \
    if (!(var = PyUnicode_InternFromString(s))) return NULL

PyMODINIT_FUNC PyInit__metricspack(void) {
    for (int i = 0; i < N_ATTRS; i++) {
        INTERN(NAMES[i], ATTR_NAMES[i]);
    }
    INTERN(S_call, "call");
    INTERN(S_verdict, "verdict");
    INTERN(S_role, "role");
    INTERN(S_local, "local");
    INTERN(S_remote, "remote");
    INTERN(S_privacy, "privacy");
    INTERN(S_budget, "budget");
    INTERN(S_v, "v");
    INTERN(S_d, "d");
    INTERN(S_c, "c");
    if (PyType_Ready(&UpdaterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&metricspack_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&UpdaterType);
    if (PyModule_AddObject(m, "Updater", (PyObject *)&UpdaterType) < 0) {
        Py_DECREF(&UpdaterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
