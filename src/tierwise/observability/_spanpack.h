/* Shared by the span writer's two files (_spanpack.c: the request and the type; _spanpack_steps.c: the
   steps): the writer's state, the bounded output buffer, values as the Python encoder reads them. */

#ifndef TIERWISE_SPANPACK_H
#define TIERWISE_SPANPACK_H

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
extern PyObject *NAMES[N_ATTRS];  /* interned attribute names (_spanpack.c) */
extern PyObject *S_call, *S_role;

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
static inline int as_count(PyObject *o, int64_t *out) {
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
static inline int as_nanos(double x, uint64_t *out) {
    double t = trunc(x);
    if (!(t >= 0.0 && t < 18446744073709551616.0)) {
        return fail("time out of range");
    }
    *out = (uint64_t)t;
    return 0;
}

static SlotCache slot_cache[N_ATTRS];

static inline PyObject *get(PyObject *o, int attr) { return slot_get(o, NAMES[attr], &slot_cache[attr]); }

/* A bytes object of exactly `n` bytes (ids). */
static inline int is_id(PyObject *o, Py_ssize_t n) { return PyBytes_CheckExact(o) && PyBytes_GET_SIZE(o) == n; }

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

/* _spanpack_steps.c: a shape's cached head, and one step's share of the request's spans */
PyObject *spanpack_lookup(Writer *w, int which, PyObject *const *items, Py_ssize_t n, PyObject *a, PyObject *b);
int spanpack_call_step(Writer *w, PyObject *s, Py_ssize_t i, PyObject *calls, StepOut *so, double *total, int64_t *tin,
                       int64_t *tout, int64_t *tcache);
int spanpack_event_step(Writer *w, PyObject *s, PyObject *kind, StepOut *so);

#endif
