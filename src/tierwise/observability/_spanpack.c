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


#include "_spanpack.h"

static const char *const ATTR_NAMES[N_ATTRS] = {"ids", "steps", "kind", "name", "model", "provider", "locality", "ok", "status", "detail", "cost", "usage", "input_tokens", "output_tokens", "cache_read_tokens", "ttft_ms", "at", "latency_ms", "score", "reason", "request_id", "route", "requested_model", "stream", "answered", "api", "error_type", "started", "reference_cost", "content"};
PyObject *NAMES[N_ATTRS];
PyObject *S_call, *S_role;

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
            if (spanpack_call_step(w, s, i, calls, &so[i], &total, &tin, &tout, &tcache) < 0) {
                goto done;
            }
            clients_size += 1 + varint_len((uint64_t)so[i].size) + so[i].size;
        } else {
            if (spanpack_event_step(w, s, kind, &so[i]) < 0) {
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
    if (!(head = spanpack_lookup(w, SERVER, items, 7, rec, NULL))) {
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
