/* The observer's finished-request record, made in C (observer.py: `finished_record`, the same in Python).

   `Maker(cls, names)` checks once that `cls` is a plain slotted class whose attributes `names` (its
   __slots__, in order) are object slots, and keeps their offsets. Per request `maker(prices, *fields)`
   finds the call that answered (the last successful call without a `role`), works out its reference cost
   from the route's per-token prices, and fills a new instance's slots: what `Finished(...)` does with the
   same values, without running __init__'s twenty attribute stores in the interpreter. Anything unexpected
   (a detail that is not a dict, a price or token count of another type, ...) raises; the observer then
   makes the record in Python. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "_slots.h"

#define N_FIELDS 20  /* Finished.__slots__ */
#define I_ROUTE 1
#define I_STEPS 9
#define I_ANSWERED 10
#define I_REF 11
#define N_ARGS (N_FIELDS - 2)  /* answered and reference_cost are worked out here */

enum {A_kind, A_ok, A_detail, A_usage, A_input_tokens, A_output_tokens, A_cache_read_tokens, A_cache_write_tokens,
      N_ATTRS};
static const char *const ATTR_NAMES[N_ATTRS] = {"kind", "ok", "detail", "usage", "input_tokens", "output_tokens",
                                                "cache_read_tokens", "cache_write_tokens"};
static PyObject *NAMES[N_ATTRS];
static SlotCache slot_cache[N_ATTRS];
static PyObject *S_call, *S_role;

static PyObject *get(PyObject *o, int attr) { return slot_get(o, NAMES[attr], &slot_cache[attr]); }

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyTypeObject *cls;
    Py_ssize_t offsets[N_FIELDS];
} Maker;

static PyObject *Maker_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);

static PyObject *Maker_new(PyTypeObject *t, PyObject *args, PyObject *kwds) {
    Maker *m = (Maker *)PyType_GenericNew(t, args, kwds);
    if (m != NULL) {
        m->vectorcall = Maker_call;
    }
    return (PyObject *)m;
}

/* The last call step that succeeded and has no role (new reference; None if there is none). */
static PyObject *answered_of(PyObject *steps) {
    for (Py_ssize_t i = PyList_GET_SIZE(steps) - 1; i >= 0; i--) {
        if (i >= PyList_GET_SIZE(steps)) {  /* a step's attribute code shrank the list: reversed() stops too */
            break;
        }
        PyObject *s = PyList_GET_ITEM(steps, i), *kind = NULL, *ok = NULL, *detail = NULL;
        int hit = -1;
        Py_INCREF(s);
        if ((kind = get(s, A_kind)) != NULL) {
            if (!PyUnicode_CheckExact(kind)) {
                fail("a step's kind is not a str");
            } else if (PyUnicode_Compare(kind, S_call) != 0) {
                hit = 0;
            } else if ((ok = get(s, A_ok)) != NULL && (hit = PyObject_IsTrue(ok)) > 0) {
                hit = -1;
                if ((detail = get(s, A_detail)) != NULL) {
                    if (!PyDict_CheckExact(detail)) {
                        fail("a step's detail is not a dict");
                    } else {
                        int has = PyDict_Contains(detail, S_role);
                        hit = has < 0 ? -1 : !has;
                    }
                }
            }
        }
        Py_XDECREF(kind);
        Py_XDECREF(ok);
        Py_XDECREF(detail);
        if (hit != 0) {
            if (hit < 0) {
                Py_DECREF(s);
                return NULL;
            }
            return s;
        }
        Py_DECREF(s);
    }
    return Py_NewRef(Py_None);
}

/* n * p for a token count n (int or float) and a price p (float), as Python multiplies them. */
static int times(PyObject *n, PyObject *p, double *out) {
    double x;
    if (!PyFloat_CheckExact(p)) {
        return fail("a price is not a float");
    }
    if (PyFloat_CheckExact(n)) {
        x = PyFloat_AS_DOUBLE(n);
    } else if (PyLong_CheckExact(n)) {
        x = PyLong_AsDouble(n);
        if (x == -1.0 && PyErr_Occurred()) {
            return -1;
        }
    } else {
        return fail("a token count is not a number");
    }
    *out = x * PyFloat_AS_DOUBLE(p);
    return 0;
}

/* The answer's cost at the reference model's prices (None without prices or an answer). New reference. */
static PyObject *reference_cost(PyObject *prices, PyObject *route, PyObject *answered) {
    if (prices == Py_None || answered == Py_None) {
        return Py_NewRef(Py_None);
    }
    if (!PyTuple_CheckExact(prices) || PyTuple_GET_SIZE(prices) != 2 || !PyDict_CheckExact(PyTuple_GET_ITEM(prices, 0))) {
        fail("prices is not (dict, miss)");
        return NULL;
    }
    PyObject *p = PyDict_GetItemWithError(PyTuple_GET_ITEM(prices, 0), route);
    if (p != NULL) {
        Py_INCREF(p);
    } else if (PyErr_Occurred() || !(p = PyObject_CallOneArg(PyTuple_GET_ITEM(prices, 1), route))) {
        return NULL;
    }
    PyObject *result = NULL, *u = NULL, *n = NULL;
    if (p == Py_None) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (!PyTuple_CheckExact(p) || PyTuple_GET_SIZE(p) != 4) {
        fail("a route's prices are not 4");
        goto done;
    }
    if (!(u = get(answered, A_usage))) {
        goto done;
    }
    if (u == Py_None) {
        result = PyFloat_FromDouble(0.0);
        goto done;
    }
    double sum = 0.0, x;
    for (int k = 0; k < 4; k++) {
        if (!(n = get(u, A_input_tokens + k)) || times(n, PyTuple_GET_ITEM(p, k), &x) < 0) {
            goto done;
        }
        Py_CLEAR(n);
        sum = k == 0 ? x : sum + x;  /* (a + b + c + d): left to right */
    }
    result = PyFloat_FromDouble(sum / 1000000.0);
done:
    Py_XDECREF(p);
    Py_XDECREF(u);
    Py_XDECREF(n);
    return result;
}

/* maker(prices, request_id, route, ..., key): the 18 fields of Finished but `answered` and `reference_cost`. */
static PyObject *Maker_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Maker *m = (Maker *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (m->cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "finished: Maker not initialised");
        return NULL;
    }
    if (kwnames != NULL || nargs != 1 + N_ARGS) {
        PyErr_SetString(PyExc_TypeError, "maker(prices, 18 fields)");
        return NULL;
    }
    PyObject *const *f = args + 1;  /* the fields, without answered and reference_cost */
    PyObject *steps = f[I_STEPS];
    if (!PyList_CheckExact(steps)) {
        fail("steps is not a list");
        return NULL;
    }
    PyObject *answered = answered_of(steps), *ref = NULL;
    if (answered == NULL || !(ref = reference_cost(args[0], f[I_ROUTE], answered))) {
        Py_XDECREF(answered);
        return NULL;
    }
    PyObject *o = m->cls->tp_alloc(m->cls, 0);
    if (o == NULL) {
        Py_DECREF(answered);
        Py_DECREF(ref);
        return NULL;
    }
    for (int i = 0, j = 0; i < N_FIELDS; i++) {
        PyObject *v = i == I_ANSWERED ? answered : i == I_REF ? ref : Py_NewRef(f[j++]);
        *(PyObject **)((char *)o + m->offsets[i]) = v;  /* (a new object's slots are NULL) */
    }
    return o;
}

static int Maker_init(Maker *m, PyObject *args, PyObject *kwds) {
    PyObject *cls, *names;
    static char *kw[] = {"cls", "names", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!", kw, &PyType_Type, &cls, &PyTuple_Type, &names)) {
        return -1;
    }
    PyTypeObject *t = (PyTypeObject *)cls;
    if (PyTuple_GET_SIZE(names) != N_FIELDS || t->tp_alloc != PyType_GenericAlloc || t->tp_itemsize != 0) {
        PyErr_SetString(PyExc_TypeError, "finished: a plain class with 20 slots");
        return -1;
    }
    Py_ssize_t offsets[N_FIELDS];
    for (int i = 0; i < N_FIELDS; i++) {
        PyObject *d = _PyType_Lookup(t, PyTuple_GET_ITEM(names, i));
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type) || PyDescr_TYPE(d) != t) {
            PyErr_SetString(PyExc_TypeError, "finished: every name must be a slot of the class itself");
            return -1;
        }
        PyMemberDef *md = ((PyMemberDescrObject *)d)->d_member;
        if (md->type != T_OBJECT_EX || md->offset <= 0 || (size_t)md->offset + sizeof(PyObject *) > (size_t)t->tp_basicsize) {
            PyErr_SetString(PyExc_TypeError, "finished: a slot that is not a plain object slot");
            return -1;
        }
        offsets[i] = md->offset;
    }
    memcpy(m->offsets, offsets, sizeof offsets);
    Py_XSETREF(m->cls, (PyTypeObject *)Py_NewRef(cls));
    return 0;
}

static int Maker_traverse(Maker *m, visitproc visit, void *arg) {
    Py_VISIT(m->cls);
    return 0;
}

static int Maker_clear(Maker *m) {
    Py_CLEAR(m->cls);
    return 0;
}

static void Maker_dealloc(Maker *m) {
    PyObject_GC_UnTrack(m);
    Maker_clear(m);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyTypeObject MakerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tierwise.observability._finished.Maker",
    .tp_basicsize = sizeof(Maker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Makes observer.Finished records (see observer.finished_record)",
    .tp_new = Maker_new,
    .tp_init = (initproc)Maker_init,
    .tp_dealloc = (destructor)Maker_dealloc,
    .tp_traverse = (traverseproc)Maker_traverse,
    .tp_clear = (inquiry)Maker_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Maker, vectorcall),
};

static struct PyModuleDef finished_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_finished",
    .m_doc = "The observer's finished-request record, made in C (see observer.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__finished(void) {
    for (int i = 0; i < N_ATTRS; i++) {
        if (!(NAMES[i] = PyUnicode_InternFromString(ATTR_NAMES[i]))) {
            return NULL;
        }
    }
    if (!(S_call = PyUnicode_InternFromString("call")) || !(S_role = PyUnicode_InternFromString("role"))) {
        return NULL;
    }
    if (PyType_Ready(&MakerType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&finished_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&MakerType);
    if (PyModule_AddObject(m, "Maker", (PyObject *)&MakerType) < 0) {
        Py_DECREF(&MakerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
