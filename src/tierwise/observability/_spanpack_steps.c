/* The span writer's per-step part (see _spanpack.c): a client span's values and head for a call step, an
   event's time and body for a decision or a verdict, and the shape cache both look their bytes up in. */

#include "_spanpack.h"

/* The shape's head for the key made of `items`. Consecutive requests mostly have the same shape: when every
   item is the object of the last key looked up (or an equal str), that key's head, without making the key
   (which only ever matches what the dict lookup would have). Otherwise a dict lookup; on a miss `miss(a[, b],
   key)` works the bytes out (and caches them). New reference. */
PyObject *spanpack_lookup(Writer *w, int which, PyObject *const *items, Py_ssize_t n, PyObject *a, PyObject *b) {
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

int spanpack_call_step(Writer *w, PyObject *s, Py_ssize_t i, PyObject *calls, StepOut *so,
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
    if (!(so->head = spanpack_lookup(w, CLIENT, items, 8, s, role))) {
        goto done;
    }
    /* span id: calls.get(i) or span_id() */
    if (calls != NULL) {
        if (!(idx = PyLong_FromSsize_t(i))) {
            goto done;
        }
        PyObject *sid = PyDict_GetItemWithError(calls, idx);  /* borrowed: held before its truth runs code */
        if (sid == NULL && PyErr_Occurred()) {
            goto done;
        }
        if (sid != NULL) {
            Py_INCREF(sid);
            int t = PyObject_IsTrue(sid);
            if (t > 0) {
                so->sid = sid;
            } else {
                Py_DECREF(sid);
            }
            if (t < 0) {
                goto done;
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

int spanpack_event_step(Writer *w, PyObject *s, PyObject *kind, StepOut *so) {
    int rc = -1;
    PyObject *name = NULL, *ok = NULL, *score = NULL, *reason = NULL, *at = NULL, *key = NULL;
    if (!(name = get(s, A_name)) || !(ok = get(s, A_ok)) || !(score = get(s, A_score)) ||
        !(reason = get(s, A_reason)) || !(at = get(s, A_at))) {
        goto done;
    }
    PyObject *const items[5] = {kind, name, ok, score, reason};
    if (!(so->head = spanpack_lookup(w, EVENT, items, 5, s, NULL))) {
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

