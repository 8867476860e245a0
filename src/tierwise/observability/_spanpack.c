/* The span encoder's per-request work in C: one finished request -> its OTLP spans, one bytes object.

   `span_encoder.SpanEncoder` owns everything that repeats across requests: a span's name, kind,
   fixed attributes and status ("head"), and an event's name and attributes ("body"), worked out
   in Python once per shape and cached in dicts this writer reads. Per request this code reads the
   finished record's objects (ids, steps, times, token counts, costs), looks the heads up, and
   writes the server span, its events and one client span per upstream call into one buffer,
   field by field, in exactly the bytes the pure-Python encoder writes
   (tests/observability/test_span_encoder.py compares the two).

   Anything unexpected (a value of another type, an integer past 64 bits, a time that is not a
   finite non-negative number of nanoseconds, ids of the wrong length) raises; the Python side then
   encodes that record with the pure-Python encoder, which either writes it or raises in turn. The
   buffer is sized first and every write is bounds-checked: a size mismatch raises SystemError. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "_slots.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_CONST 256  /* bytes of a constant attribute prefix */
#define STACK_STEPS 16

/* attribute names, interned at import; `get` takes their index */
enum {A_ids, A_steps, A_kind, A_name, A_model, A_provider, A_locality, A_ok, A_status, A_detail, A_cost, A_usage, A_input_tokens, A_output_tokens, A_cache_read_tokens, A_ttft_ms, A_at, A_latency_ms, A_score, A_reason, A_request_id, A_route, A_requested_model, A_stream, A_answered, A_api, A_error_type, A_started, A_reference_cost, A_content, N_ATTRS};
static const char *const ATTR_NAMES[N_ATTRS] = {"ids", "steps", "kind", "name", "model", "provider", "locality", "ok", "status", "detail", "cost", "usage", "input_tokens", "output_tokens", "cache_read_tokens", "ttft_ms", "at", "latency_ms", "score", "reason", "request_id", "route", "requested_model", "stream", "answered", "api", "error_type", "started", "reference_cost", "content"};
static PyObject *NAMES[N_ATTRS];
static PyObject *S_call, *S_role;

typedef struct {
    unsigned char b[MAX_CONST];
    Py_ssize_t n;
} Const;

typedef struct {
    PyObject_HEAD
    double offset;
    PyObject *servers, *clients, *events;               /* dicts: shape key -> bytes */
    PyObject *miss_server, *miss_client, *miss_event;   /* (record|step[, role], key) -> bytes, cached */
    PyObject *span_id;                                  /* () -> 8 bytes */
    PyObject *content_attr;                             /* (record) -> bytes */
    PyObject *call_error_type;                          /* (ok, status, reason) -> str */
    PyObject *none_label;                               /* "none" */
    Const k_rid, k_in, k_out, k_cache;                  /* KeyValue.key fields */
    Const p_cost, p_ref, p_ttft;                        /* the bytes before a double value */
    PyObject *memo_key[3], *memo_head[3];               /* the last shape looked up: server, client, event */
} Writer;

/* ------------------------------------------------------------------ bounded output */

typedef struct {
    unsigned char *p, *end;
    int overflow;
} Out;

static inline void put(Out *o, const void *src, Py_ssize_t n) {
    if (n < 0 || o->end - o->p < n) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p, src, (size_t)n);
    o->p += n;
}

static inline void put_byte(Out *o, unsigned char b) {
    if (o->p >= o->end) {
        o->overflow = 1;
        return;
    }
    *o->p++ = b;
}

static inline int varint_len(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void put_varint(Out *o, uint64_t v) {
    while (v >= 0x80) {
        put_byte(o, (unsigned char)((v & 0x7F) | 0x80));
        v >>= 7;
    }
    put_byte(o, (unsigned char)v);
}

static inline void put_u64(Out *o, uint64_t v) {  /* little-endian (protobuf's fixed64) */
#if !PY_LITTLE_ENDIAN
    v = __builtin_bswap64(v);
#endif
    put(o, &v, 8);
}

static inline void put_double(Out *o, double d) {
    uint64_t bits;
    memcpy(&bits, &d, 8);
    put_u64(o, bits);
}

/* ------------------------------------------------------------------ values */

/* A token count: an int (or bool) in 64 bits. Negative counts go out as protobuf does: 10 bytes. */
static int as_count(PyObject *o, int64_t *out) {
    if (!PyLong_CheckExact(o) && !PyBool_Check(o)) {
        return fail("token count is not an int");
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow) {
        return fail("token count past 64 bits");
    }
    *out = (int64_t)v;
    return 0;
}

/* Nanoseconds since the epoch as Python's math.trunc(x) packed as an unsigned 64-bit integer. */
static int as_nanos(double x, uint64_t *out) {
    double t = trunc(x);
    if (!(t >= 0.0 && t < 18446744073709551616.0)) {
        return fail("time out of range");
    }
    *out = (uint64_t)t;
    return 0;
}

static SlotCache slot_cache[N_ATTRS];

static PyObject *get(PyObject *o, int attr) { return slot_get(o, NAMES[attr], &slot_cache[attr]); }

/* A bytes object of exactly `n` bytes (ids). */
static int is_id(PyObject *o, Py_ssize_t n) { return PyBytes_CheckExact(o) && PyBytes_GET_SIZE(o) == n; }

static inline Py_ssize_t int_attr_size(const Const *k, uint64_t v) {
    int w = varint_len(v);
    return 1 + varint_len((uint64_t)(k->n + 3 + w)) + k->n + 3 + w;
}

static inline void put_int_attr(Out *o, const Const *k, uint64_t v) {
    int w = varint_len(v);
    put_byte(o, 0x4a);
    put_varint(o, (uint64_t)(k->n + 3 + w));
    put(o, k->b, k->n);
    put_byte(o, 0x12);
    put_byte(o, (unsigned char)(1 + w));
    put_byte(o, 0x18);
    put_varint(o, v);
}

static inline void put_double_attr(Out *o, const Const *p, double d) {
    put(o, p->b, p->n);
    put_double(o, d);
}

/* ------------------------------------------------------------------ per step */

typedef struct {
    int is_call;
    PyObject *head;  /* strong: a client span's head, or an event's body */
    PyObject *sid;   /* strong: a client span's id (8 bytes) */
    uint64_t st, en;
    int has_cost, has_usage, has_ttft;
    double cost, ttft;
    int64_t nin, nout, ncache;
    Py_ssize_t size;  /* a client span's bytes (without its tag and length); an event's entry */
} StepOut;

enum { SERVER, CLIENT, EVENT };

/* The shape's head for the key made of `items`. Consecutive requests mostly have the same shape: when every
   item is the object of the last key looked up (or an equal str), that key's head, without making the key
   (which only ever matches what the dict lookup would have). Otherwise a dict lookup; on a miss `miss(a[, b],
   key)` works the bytes out (and caches them). New reference. */
static PyObject *lookup(Writer *w, int which, PyObject *const *items, Py_ssize_t n, PyObject *a, PyObject *b) {
    PyObject *last = w->memo_key[which];
    if (last != NULL && PyTuple_GET_SIZE(last) == n) {
        Py_ssize_t i = 0;
        for (; i < n; i++) {
            PyObject *x = items[i], *y = PyTuple_GET_ITEM(last, i);
            if (x != y && !(PyUnicode_CheckExact(x) && PyUnicode_CheckExact(y) && PyUnicode_Compare(x, y) == 0)) {
                break;
            }
        }
        if (i == n) {
            return Py_NewRef(w->memo_head[which]);
        }
    }
    PyObject *cache = which == SERVER ? w->servers : which == CLIENT ? w->clients : w->events;
    PyObject *miss = which == SERVER ? w->miss_server : which == CLIENT ? w->miss_client : w->miss_event;
    PyObject *key = PyTuple_New(n);
    if (key == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(key, i, Py_NewRef(items[i]));
    }
    PyObject *v = PyDict_GetItemWithError(cache, key);
    if (v != NULL) {
        Py_INCREF(v);
    } else if (!PyErr_Occurred()) {
        v = b == NULL ? PyObject_CallFunctionObjArgs(miss, a, key, NULL) : PyObject_CallFunctionObjArgs(miss, a, b, key, NULL);
    }
    if (v != NULL && !PyBytes_CheckExact(v)) {
        Py_CLEAR(v);
        fail("a shape's bytes are not bytes");
    }
    if (v == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    Py_XSETREF(w->memo_key[which], key);  /* (takes the key's reference) */
    Py_XSETREF(w->memo_head[which], Py_NewRef(v));
    return v;
}

/* `(x or 0.0)` for a call's latency: None, 0 and 0.0 are 0.0; otherwise a number. */
static int latency_or_zero(PyObject *o, double *out) {
    if (o == Py_None) {
        *out = 0.0;
        return 0;
    }
    return as_double(o, out);
}

static int call_step(Writer *w, PyObject *s, Py_ssize_t i, PyObject *calls, StepOut *so,
                     double *total, int64_t *tin, int64_t *tout, int64_t *tcache) {
    int rc = -1;
    PyObject *name = NULL, *model = NULL, *provider = NULL, *locality = NULL, *ok = NULL, *status = NULL;
    PyObject *detail = NULL, *role = NULL, *cost = NULL, *usage = NULL, *ttft = NULL, *err = NULL, *key = NULL;
    PyObject *at = NULL, *lat = NULL, *v = NULL, *idx = NULL;
    so->is_call = 1;

    if (!(name = get(s, A_name)) || !(model = get(s, A_model)) || !(provider = get(s, A_provider)) ||
        !(locality = get(s, A_locality)) || !(ok = get(s, A_ok)) || !(status = get(s, A_status)) ||
        !(detail = get(s, A_detail)) || !(cost = get(s, A_cost)) || !(usage = get(s, A_usage)) ||
        !(ttft = get(s, A_ttft_ms)) || !(at = get(s, A_at)) || !(lat = get(s, A_latency_ms))) {
        goto done;
    }
    /* role = s.detail.get("role") if s.detail else None */
    if (PyDict_CheckExact(detail)) {
        if (PyDict_GET_SIZE(detail)) {
            role = PyDict_GetItemWithError(detail, S_role);
            if (role == NULL && PyErr_Occurred()) {
                goto done;
            }
        }
        role = role ? role : Py_None;
        Py_INCREF(role);
    } else if (detail == Py_None) {
        role = Py_NewRef(Py_None);
    } else {
        fail("detail is not a dict");
        goto done;
    }
    if (cost != Py_None) {
        if (as_double(cost, &so->cost) < 0) {
            goto done;
        }
        so->has_cost = 1;
        *total += so->cost;
    }
    if (usage != Py_None) {
        if (!(v = get(usage, A_input_tokens)) || as_count(v, &so->nin) < 0) {
            goto done;
        }
        Py_CLEAR(v);
        if (!(v = get(usage, A_output_tokens)) || as_count(v, &so->nout) < 0) {
            goto done;
        }
        Py_CLEAR(v);
        if (!(v = get(usage, A_cache_read_tokens)) || as_count(v, &so->ncache) < 0) {
            goto done;
        }
        Py_CLEAR(v);
        so->has_usage = 1;
        if (__builtin_add_overflow(*tin, so->nin, tin) || __builtin_add_overflow(*tout, so->nout, tout) ||
            __builtin_add_overflow(*tcache, so->ncache, tcache)) {
            fail("token counts past 64 bits");
            goto done;
        }
    }
    if (ttft != Py_None) {
        if (as_double(ttft, &so->ttft) < 0) {
            goto done;
        }
        so->ttft /= 1000;
        so->has_ttft = 1;
    }
    if (ok == Py_False) {
        if (!(v = get(s, A_reason))) {
            goto done;
        }
        err = PyObject_CallFunctionObjArgs(w->call_error_type, ok, status, v, NULL);
        Py_CLEAR(v);
        if (err == NULL) {
            goto done;
        }
    } else {
        err = Py_NewRef(w->none_label);
    }
    PyObject *const items[8] = {name, model, provider, locality, ok, status, role, err};
    if (!(so->head = lookup(w, CLIENT, items, 8, s, role))) {
        goto done;
    }
    /* span id: calls.get(i) or span_id() */
    if (calls != NULL) {
        if (!(idx = PyLong_FromSsize_t(i))) {
            goto done;
        }
        PyObject *sid = PyDict_GetItemWithError(calls, idx);
        if (sid == NULL && PyErr_Occurred()) {
            goto done;
        }
        if (sid != NULL) {
            int t = PyObject_IsTrue(sid);
            if (t < 0) {
                goto done;
            }
            if (t) {
                so->sid = Py_NewRef(sid);
            }
        }
    }
    if (so->sid == NULL && !(so->sid = PyObject_CallNoArgs(w->span_id))) {
        goto done;
    }
    if (!is_id(so->sid, 8)) {
        fail("span id is not 8 bytes");
        goto done;
    }
    double a, l;
    if (as_double(at, &a) < 0 || latency_or_zero(lat, &l) < 0) {
        goto done;
    }
    double st = a + w->offset;
    if (as_nanos(st * 1e9, &so->st) < 0 || as_nanos((st + l / 1000) * 1e9, &so->en) < 0) {
        goto done;
    }
    Py_ssize_t n = 18 + 10 + 10 + PyBytes_GET_SIZE(so->head) + 18;
    if (so->has_cost) {
        n += w->p_cost.n + 8;
    }
    if (so->has_usage) {
        n += int_attr_size(&w->k_in, (uint64_t)so->nin) + int_attr_size(&w->k_out, (uint64_t)so->nout);
        if (so->ncache) {
            n += int_attr_size(&w->k_cache, (uint64_t)so->ncache);
        }
    }
    if (so->has_ttft) {
        n += w->p_ttft.n + 8;
    }
    so->size = n;
    rc = 0;
done:
    Py_XDECREF(name);
    Py_XDECREF(model);
    Py_XDECREF(provider);
    Py_XDECREF(locality);
    Py_XDECREF(ok);
    Py_XDECREF(status);
    Py_XDECREF(detail);
    Py_XDECREF(role);
    Py_XDECREF(cost);
    Py_XDECREF(usage);
    Py_XDECREF(ttft);
    Py_XDECREF(err);
    Py_XDECREF(key);
    Py_XDECREF(at);
    Py_XDECREF(lat);
    Py_XDECREF(v);
    Py_XDECREF(idx);
    return rc;
}

static int event_step(Writer *w, PyObject *s, PyObject *kind, StepOut *so) {
    int rc = -1;
    PyObject *name = NULL, *ok = NULL, *score = NULL, *reason = NULL, *at = NULL, *key = NULL;
    if (!(name = get(s, A_name)) || !(ok = get(s, A_ok)) || !(score = get(s, A_score)) ||
        !(reason = get(s, A_reason)) || !(at = get(s, A_at))) {
        goto done;
    }
    PyObject *const items[5] = {kind, name, ok, score, reason};
    if (!(so->head = lookup(w, EVENT, items, 5, s, NULL))) {
        goto done;
    }
    double a;
    if (as_double(at, &a) < 0 || as_nanos((a + w->offset) * 1e9, &so->st) < 0) {
        goto done;
    }
    Py_ssize_t body = 9 + PyBytes_GET_SIZE(so->head);
    so->size = 1 + varint_len((uint64_t)body) + body;
    rc = 0;
done:
    Py_XDECREF(name);
    Py_XDECREF(ok);
    Py_XDECREF(score);
    Py_XDECREF(reason);
    Py_XDECREF(at);
    Py_XDECREF(key);
    return rc;
}

/* ------------------------------------------------------------------ the request */

static PyObject *Writer_write(Writer *w, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "write(record, out: list)");
        return NULL;
    }
    PyObject *rec = args[0], *outlist = args[1];
    PyObject *result = NULL;
    PyObject *ids = NULL, *steps = NULL, *tid = NULL, *sid = NULL, *parent = NULL, *calls = NULL;
    PyObject *answered = NULL, *aname = NULL, *stream = NULL, *ttft_o = NULL, *ref_o = NULL, *rid_o = NULL;
    PyObject *rid_b = NULL, *route = NULL, *rmodel = NULL, *status = NULL, *api = NULL, *etype = NULL;
    PyObject *key = NULL, *head = NULL, *started = NULL, *lat = NULL, *content = NULL, *cattr = NULL;
    PyObject *buf = NULL, *kind = NULL;
    StepOut stack[STACK_STEPS];
    StepOut *so = stack;
    Py_ssize_t nsteps = 0;

    if (!(ids = get(rec, A_ids))) {
        goto done;
    }
    if (!(PyList_CheckExact(ids) || PyTuple_CheckExact(ids)) || PySequence_Fast_GET_SIZE(ids) != 7) {
        fail("ids is not a list of 7");
        goto done;
    }
    tid = Py_NewRef(PySequence_Fast_GET_ITEM(ids, 0));
    sid = Py_NewRef(PySequence_Fast_GET_ITEM(ids, 1));
    parent = Py_NewRef(PySequence_Fast_GET_ITEM(ids, 2));
    calls = Py_NewRef(PySequence_Fast_GET_ITEM(ids, 4));
    if (!is_id(tid, 16) || !is_id(sid, 8) || !(is_id(parent, 0) || is_id(parent, 8))) {
        fail("ids of the wrong length");
        goto done;
    }
    if (calls == Py_None || (PyDict_CheckExact(calls) && PyDict_GET_SIZE(calls) == 0)) {
        Py_CLEAR(calls);
    } else if (!PyDict_CheckExact(calls)) {
        fail("call span ids are not a dict");
        goto done;
    }
    PyObject *steps_o = get(rec, A_steps);
    if (steps_o == NULL) {
        goto done;
    }
    if (!PyList_CheckExact(steps_o)) {
        Py_DECREF(steps_o);
        fail("steps is not a list");
        goto done;
    }
    steps = PyList_AsTuple(steps_o);  /* a snapshot: callbacks below run Python code */
    Py_DECREF(steps_o);
    if (steps == NULL) {
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(steps);
    if (n > STACK_STEPS) {
        so = PyMem_Calloc((size_t)n, sizeof(StepOut));
        if (so == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    } else {
        memset(stack, 0, (size_t)n * sizeof(StepOut));
    }
    double total = 0.0;
    int64_t tin = 0, tout = 0, tcache = 0;
    Py_ssize_t clients_size = 0, events_size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyTuple_GET_ITEM(steps, i);
        nsteps = i + 1;
        if (!(kind = get(s, A_kind))) {
            goto done;
        }
        int is_call = kind == S_call;
        if (!is_call && PyUnicode_Check(kind)) {
            is_call = PyUnicode_Compare(kind, S_call) == 0;
        }
        if (is_call) {
            if (call_step(w, s, i, calls, &so[i], &total, &tin, &tout, &tcache) < 0) {
                goto done;
            }
            clients_size += 1 + varint_len((uint64_t)so[i].size) + so[i].size;
        } else {
            if (event_step(w, s, kind, &so[i]) < 0) {
                goto done;
            }
            events_size += so[i].size;
        }
        Py_CLEAR(kind);
    }

    /* the server span */
    if (!(answered = get(rec, A_answered)) || !(stream = get(rec, A_stream)) || !(ref_o = get(rec, A_reference_cost)) ||
        !(rid_o = get(rec, A_request_id)) || !(route = get(rec, A_route)) || !(rmodel = get(rec, A_requested_model)) ||
        !(status = get(rec, A_status)) || !(api = get(rec, A_api)) || !(etype = get(rec, A_error_type)) ||
        !(started = get(rec, A_started)) || !(lat = get(rec, A_latency_ms)) || !(content = get(rec, A_content))) {
        goto done;
    }
    if (answered == Py_None) {
        aname = Py_NewRef(Py_None);
    } else if (!(aname = get(answered, A_name))) {
        goto done;
    }
    int streamed = PyObject_IsTrue(stream);
    if (streamed < 0) {
        goto done;
    }
    double ttft = 0.0, ref = 0.0;
    int has_ttft = 0;
    if (streamed) {
        if (!(ttft_o = get(rec, A_ttft_ms))) {
            goto done;
        }
        if (ttft_o != Py_None) {
            if (as_double(ttft_o, &ttft) < 0) {
                goto done;
            }
            has_ttft = ttft != 0.0;
        }
    }
    int has_ref = ref_o != Py_None;
    if (has_ref && as_double(ref_o, &ref) < 0) {
        goto done;
    }
    if (!PyUnicode_CheckExact(rid_o)) {
        fail("request id is not a str");
        goto done;
    }
    const char *ridp;
    Py_ssize_t nrid;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(rid_o) < 0) {
        goto done;
    }
#endif
    if (PyUnicode_IS_ASCII(rid_o)) {  /* its own bytes are its UTF-8 */
        ridp = (const char *)PyUnicode_DATA(rid_o);
        nrid = PyUnicode_GET_LENGTH(rid_o);
    } else {
        if (!(rid_b = PyUnicode_AsEncodedString(rid_o, "utf-8", "replace"))) {
            goto done;
        }
        ridp = PyBytes_AS_STRING(rid_b);
        nrid = PyBytes_GET_SIZE(rid_b);
    }
    PyObject *const items[7] = {route, rmodel, stream, aname, status, api, etype};
    if (!(head = lookup(w, SERVER, items, 7, rec, NULL))) {
        goto done;
    }
    double st0, l0;
    uint64_t sst, sen;
    if (as_double(started, &st0) < 0 || as_double(lat, &l0) < 0) {
        goto done;
    }
    st0 += w->offset;
    if (as_nanos(st0 * 1e9, &sst) < 0 || as_nanos((st0 + l0 / 1000) * 1e9, &sen) < 0) {
        goto done;
    }
    if (content != Py_None) {
        if (!(cattr = PyObject_CallOneArg(w->content_attr, rec))) {
            goto done;
        }
        if (!PyBytes_CheckExact(cattr)) {
            fail("content attribute is not bytes");
            goto done;
        }
    }
    Py_ssize_t any_len = 1 + varint_len((uint64_t)nrid) + nrid;
    Py_ssize_t rid_inner = w->k_rid.n + 1 + varint_len((uint64_t)any_len) + any_len;
    Py_ssize_t ssize = 18 + 10 + (PyBytes_GET_SIZE(parent) ? 10 : 0) + PyBytes_GET_SIZE(head) + 18;
    ssize += 1 + varint_len((uint64_t)rid_inner) + rid_inner;
    ssize += int_attr_size(&w->k_in, (uint64_t)tin) + int_attr_size(&w->k_out, (uint64_t)tout);
    if (tcache) {
        ssize += int_attr_size(&w->k_cache, (uint64_t)tcache);
    }
    if (has_ttft) {
        ssize += w->p_ttft.n + 8;
    }
    if (total != 0.0) {
        ssize += w->p_cost.n + 8;
    }
    if (has_ref) {
        ssize += w->p_ref.n + 8;
    }
    if (cattr) {
        ssize += PyBytes_GET_SIZE(cattr);
    }
    ssize += events_size;
    Py_ssize_t size = 1 + varint_len((uint64_t)ssize) + ssize + clients_size;

    if (!(buf = PyBytes_FromStringAndSize(NULL, size))) {
        goto done;
    }
    Out o = {(unsigned char *)PyBytes_AS_STRING(buf), (unsigned char *)PyBytes_AS_STRING(buf) + size, 0};
    const char *tidp = PyBytes_AS_STRING(tid), *sidp = PyBytes_AS_STRING(sid);
    put_byte(&o, 0x12);
    put_varint(&o, (uint64_t)ssize);
    put(&o, "\x0a\x10", 2);
    put(&o, tidp, 16);
    put(&o, "\x12\x08", 2);
    put(&o, sidp, 8);
    if (PyBytes_GET_SIZE(parent)) {
        put(&o, "\x22\x08", 2);
        put(&o, PyBytes_AS_STRING(parent), 8);
    }
    put(&o, PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head));
    put_byte(&o, 0x39);
    put_u64(&o, sst);
    put_byte(&o, 0x41);
    put_u64(&o, sen);
    put_byte(&o, 0x4a);
    put_varint(&o, (uint64_t)rid_inner);
    put(&o, w->k_rid.b, w->k_rid.n);
    put_byte(&o, 0x12);
    put_varint(&o, (uint64_t)any_len);
    put_byte(&o, 0x0a);
    put_varint(&o, (uint64_t)nrid);
    put(&o, ridp, nrid);
    put_int_attr(&o, &w->k_in, (uint64_t)tin);
    put_int_attr(&o, &w->k_out, (uint64_t)tout);
    if (tcache) {
        put_int_attr(&o, &w->k_cache, (uint64_t)tcache);
    }
    if (has_ttft) {
        put_double_attr(&o, &w->p_ttft, ttft / 1000);
    }
    if (total != 0.0) {
        put_double_attr(&o, &w->p_cost, total);
    }
    if (has_ref) {
        put_double_attr(&o, &w->p_ref, ref);
    }
    if (cattr) {
        put(&o, PyBytes_AS_STRING(cattr), PyBytes_GET_SIZE(cattr));
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        StepOut *e = &so[i];
        if (e->is_call) {
            continue;
        }
        put_byte(&o, 0x5a);
        put_varint(&o, (uint64_t)(9 + PyBytes_GET_SIZE(e->head)));
        put_byte(&o, 0x09);
        put_u64(&o, e->st);
        put(&o, PyBytes_AS_STRING(e->head), PyBytes_GET_SIZE(e->head));
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        StepOut *c = &so[i];
        if (!c->is_call) {
            continue;
        }
        put_byte(&o, 0x12);
        put_varint(&o, (uint64_t)c->size);
        put(&o, "\x0a\x10", 2);
        put(&o, tidp, 16);
        put(&o, "\x12\x08", 2);
        put(&o, PyBytes_AS_STRING(c->sid), 8);
        put(&o, "\x22\x08", 2);
        put(&o, sidp, 8);
        put(&o, PyBytes_AS_STRING(c->head), PyBytes_GET_SIZE(c->head));
        put_byte(&o, 0x39);
        put_u64(&o, c->st);
        put_byte(&o, 0x41);
        put_u64(&o, c->en);
        if (c->has_cost) {
            put_double_attr(&o, &w->p_cost, c->cost);
        }
        if (c->has_usage) {
            put_int_attr(&o, &w->k_in, (uint64_t)c->nin);
            put_int_attr(&o, &w->k_out, (uint64_t)c->nout);
            if (c->ncache) {
                put_int_attr(&o, &w->k_cache, (uint64_t)c->ncache);
            }
        }
        if (c->has_ttft) {
            put_double_attr(&o, &w->p_ttft, c->ttft);
        }
    }
    if (o.overflow || o.p != o.end) {
        PyErr_SetString(PyExc_SystemError, "spanpack: span size mismatch");
        goto done;
    }
    if (PyList_Append(outlist, buf) < 0) {
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < nsteps; i++) {
        Py_XDECREF(so[i].head);
        Py_XDECREF(so[i].sid);
    }
    if (so != stack) {
        PyMem_Free(so);
    }
    Py_XDECREF(ids);
    Py_XDECREF(steps);
    Py_XDECREF(tid);
    Py_XDECREF(sid);
    Py_XDECREF(parent);
    Py_XDECREF(calls);
    Py_XDECREF(answered);
    Py_XDECREF(aname);
    Py_XDECREF(stream);
    Py_XDECREF(ttft_o);
    Py_XDECREF(ref_o);
    Py_XDECREF(rid_o);
    Py_XDECREF(rid_b);
    Py_XDECREF(route);
    Py_XDECREF(rmodel);
    Py_XDECREF(status);
    Py_XDECREF(api);
    Py_XDECREF(etype);
    Py_XDECREF(key);
    Py_XDECREF(head);
    Py_XDECREF(started);
    Py_XDECREF(lat);
    Py_XDECREF(content);
    Py_XDECREF(cattr);
    Py_XDECREF(buf);
    Py_XDECREF(kind);
    return result;
}

/* ------------------------------------------------------------------ the type */

static int set_const(Const *c, PyObject *b) {
    if (!PyBytes_CheckExact(b) || PyBytes_GET_SIZE(b) > MAX_CONST) {
        PyErr_SetString(PyExc_ValueError, "spanpack: constants are bytes of at most 256");
        return -1;
    }
    c->n = PyBytes_GET_SIZE(b);
    memcpy(c->b, PyBytes_AS_STRING(b), (size_t)c->n);
    return 0;
}

static int Writer_init(Writer *w, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"offset", "servers", "clients", "events", "miss_server", "miss_client", "miss_event",
                         "span_id", "content_attr", "call_error_type", "none_label", "k_rid", "k_in", "k_out",
                         "k_cache", "p_cost", "p_ref", "p_ttft", NULL};
    double offset;
    PyObject *servers, *clients, *events, *ms, *mc, *me, *sid, *ca, *cet, *none;
    PyObject *k_rid, *k_in, *k_out, *k_cache, *p_cost, *p_ref, *p_ttft;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "dO!O!O!OOOOOOUSSSSSSS", kw, &offset, &PyDict_Type, &servers,
                                     &PyDict_Type, &clients, &PyDict_Type, &events, &ms, &mc, &me, &sid, &ca, &cet,
                                     &none, &k_rid, &k_in, &k_out, &k_cache, &p_cost, &p_ref, &p_ttft)) {
        return -1;
    }
    if (set_const(&w->k_rid, k_rid) < 0 || set_const(&w->k_in, k_in) < 0 || set_const(&w->k_out, k_out) < 0 ||
        set_const(&w->k_cache, k_cache) < 0 || set_const(&w->p_cost, p_cost) < 0 ||
        set_const(&w->p_ref, p_ref) < 0 || set_const(&w->p_ttft, p_ttft) < 0) {
        return -1;
    }
    w->offset = offset;
    Py_XSETREF(w->servers, Py_NewRef(servers));
    Py_XSETREF(w->clients, Py_NewRef(clients));
    Py_XSETREF(w->events, Py_NewRef(events));
    Py_XSETREF(w->miss_server, Py_NewRef(ms));
    Py_XSETREF(w->miss_client, Py_NewRef(mc));
    Py_XSETREF(w->miss_event, Py_NewRef(me));
    Py_XSETREF(w->span_id, Py_NewRef(sid));
    Py_XSETREF(w->content_attr, Py_NewRef(ca));
    Py_XSETREF(w->call_error_type, Py_NewRef(cet));
    Py_XSETREF(w->none_label, Py_NewRef(none));
    return 0;
}

static int Writer_traverse(Writer *w, visitproc visit, void *arg) {
    Py_VISIT(w->servers);
    Py_VISIT(w->clients);
    Py_VISIT(w->events);
    Py_VISIT(w->miss_server);
    Py_VISIT(w->miss_client);
    Py_VISIT(w->miss_event);
    Py_VISIT(w->span_id);
    Py_VISIT(w->content_attr);
    Py_VISIT(w->call_error_type);
    Py_VISIT(w->none_label);
    for (int i = 0; i < 3; i++) {
        Py_VISIT(w->memo_key[i]);
        Py_VISIT(w->memo_head[i]);
    }
    return 0;
}

static int Writer_clear(Writer *w) {
    Py_CLEAR(w->servers);
    Py_CLEAR(w->clients);
    Py_CLEAR(w->events);
    Py_CLEAR(w->miss_server);
    Py_CLEAR(w->miss_client);
    Py_CLEAR(w->miss_event);
    Py_CLEAR(w->span_id);
    Py_CLEAR(w->content_attr);
    Py_CLEAR(w->call_error_type);
    Py_CLEAR(w->none_label);
    for (int i = 0; i < 3; i++) {
        Py_CLEAR(w->memo_key[i]);
        Py_CLEAR(w->memo_head[i]);
    }
    return 0;
}

static void Writer_dealloc(Writer *w) {
    PyObject_GC_UnTrack(w);
    Writer_clear(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

/* Called before __init__ has run (or after it failed): a writer that is not set up writes nothing. */
static PyObject *Writer_call_checked(Writer *w, PyObject *const *args, Py_ssize_t nargs) {
    if (w->servers == NULL || w->miss_server == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "spanpack: Writer not initialised");
        return NULL;
    }
    return Writer_write(w, args, nargs);
}

static PyMethodDef Writer_methods[] = {
    {"write", (PyCFunction)(void (*)(void))Writer_call_checked, METH_FASTCALL,
     "write(record, out): append the record's spans (ScopeSpans.spans entries) to `out` as one bytes object"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tierwise.observability._spanpack.Writer",
    .tp_basicsize = sizeof(Writer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Writes a finished request's OTLP spans (see span_encoder.SpanEncoder)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Writer_init,
    .tp_dealloc = (destructor)Writer_dealloc,
    .tp_traverse = (traverseproc)Writer_traverse,
    .tp_clear = (inquiry)Writer_clear,
    .tp_methods = Writer_methods,
};

static struct PyModuleDef spanpack_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_spanpack",
    .m_doc = "A finished request's OTLP spans, written in C (see span_encoder.py).",
    .m_size = -1,
};

#define INTERN(var, s) \
    if (!(var = PyUnicode_InternFromString(s))) return NULL

PyMODINIT_FUNC PyInit__spanpack(void) {
    for (int i = 0; i < N_ATTRS; i++) {
        if (!(NAMES[i] = PyUnicode_InternFromString(ATTR_NAMES[i]))) {
            return NULL;
        }
    }
    INTERN(S_call, "call");
    INTERN(S_role, "role");
    if (PyType_Ready(&WriterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&spanpack_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&WriterType);
    if (PyModule_AddObject(m, "Writer", (PyObject *)&WriterType) < 0) {
        Py_DECREF(&WriterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
