/* A traced request's ids, for tracecontext.py: trace and span ids from xoshiro256** and a request's id record
   with its first upstream call's `traceparent` ready-made (see tracecontext.new_ids). Built by setup.py as an
   optional extension; without it tracecontext draws ids from an os.urandom pool. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Trace and span ids from xoshiro256** (identifiers, not secrets: the OTel SDK draws them from Python's
   Mersenne Twister), seeded from os.urandom at import and again in a forked child (tracecontext.py), so
   workers never repeat each other's ids. An all-zero id is invalid in W3C trace context: redrawn. */

static uint64_t rng[4] = {0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL, 0x94D049BB133111EBULL, 0x2545F4914F6CDD1DULL};

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(void) {
    const uint64_t result = rotl(rng[1] * 5, 7) * 9;
    const uint64_t t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

static uint64_t nonzero(void) {
    uint64_t v;
    do {
        v = rng_next();
    } while (v == 0);
    return v;
}

static PyObject *reseed(PyObject *m, PyObject *seed) {
    (void)m;
    if (!PyBytes_Check(seed) || PyBytes_GET_SIZE(seed) != 32) {
        PyErr_SetString(PyExc_ValueError, "reseed(32 random bytes)");
        return NULL;
    }
    memcpy(rng, PyBytes_AS_STRING(seed), 32);
    if (!(rng[0] | rng[1] | rng[2] | rng[3])) {
        rng[0] = 1;  /* the one state xoshiro cannot leave */
    }
    Py_RETURN_NONE;
}

static PyObject *id_bytes(uint64_t v) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, 8);
    if (b != NULL) {
        memcpy(PyBytes_AS_STRING(b), &v, 8);
    }
    return b;
}

static PyObject *new_span_id(PyObject *m, PyObject *noargs) {
    (void)m;
    (void)noargs;
    return id_bytes(nonzero());
}

static void hex(char *out, const unsigned char *b, int n) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
}

/* [trace id, server span id, b"", True, None, the first upstream call's span id, its traceparent] */
static PyObject *new_record(PyObject *m, PyObject *noargs) {
    (void)m;
    (void)noargs;
    uint64_t t[2];
    do {
        t[0] = rng_next();
        t[1] = rng_next();
    } while (!(t[0] | t[1]));
    uint64_t first = nonzero();
    PyObject *tid = PyBytes_FromStringAndSize((const char *)t, 16);
    PyObject *sid = id_bytes(nonzero());
    PyObject *fid = id_bytes(first);
    PyObject *header = PyUnicode_New(55, 127);
    PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
    PyObject *rec = PyList_New(7);
    if (!tid || !sid || !fid || !header || !empty || !rec) {
        Py_XDECREF(tid);
        Py_XDECREF(sid);
        Py_XDECREF(fid);
        Py_XDECREF(header);
        Py_XDECREF(empty);
        Py_XDECREF(rec);
        return NULL;
    }
    char *h = (char *)PyUnicode_1BYTE_DATA(header);  /* 00-<32 hex>-<16 hex>-01 */
    memcpy(h, "00-", 3);
    hex(h + 3, (const unsigned char *)t, 16);
    h[35] = '-';
    hex(h + 36, (const unsigned char *)&first, 8);
    memcpy(h + 52, "-01", 3);
    PyList_SET_ITEM(rec, 0, tid);
    PyList_SET_ITEM(rec, 1, sid);
    PyList_SET_ITEM(rec, 2, empty);
    PyList_SET_ITEM(rec, 3, Py_NewRef(Py_True));
    PyList_SET_ITEM(rec, 4, Py_NewRef(Py_None));
    PyList_SET_ITEM(rec, 5, fid);
    PyList_SET_ITEM(rec, 6, header);
    return rec;
}

static PyMethodDef module_methods[] = {
    {"new_record", new_record, METH_NOARGS,
     "a request's ids: [trace id, span id, b'', True, None, first call's span id, its traceparent]"},
    {"span_id", new_span_id, METH_NOARGS, "a new span id (8 bytes, never all zero)"},
    {"reseed", reseed, METH_O, "reseed(32 random bytes): the id generator's state (at import and after fork)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef spanids_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_spanids",
    .m_doc = "Trace and span ids for tracecontext.py (xoshiro256**, reseeded from os.urandom).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__spanids(void) { return PyModule_Create(&spanids_module); }
