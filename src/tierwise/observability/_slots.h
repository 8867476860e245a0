/* Shared by tierwise's C extensions (_spanpack.c, _metricspack.c): attribute reads of slotted records by
   their member offset, and numbers as Python reads them. Each module includes this file (static functions:
   every module has its own copy and its own caches).

   Attribute reads. The records are instances of slotted classes (Finished, Step, Usage): an attribute is a
   member descriptor, a fixed offset into the object. The offset is cached per (type, attribute name),
   checked against the type's version tag (a type changed since gets a new tag) and only for types with the
   generic attribute lookup (no __getattr__/__getattribute__), whose descriptor is a plain object slot of
   a class the object is an instance of: a member descriptor is a data descriptor, so nothing shadows it,
   and reading the slot is what getattr would do. Anything else goes through PyObject_GetAttr. */

#ifndef TIERWISE_SLOTS_H
#define TIERWISE_SLOTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

typedef struct {
    PyTypeObject *type;  /* not owned: a type freed and another made at its address gets a new version tag */
    unsigned int version;
    PyObject *name;      /* interned, owned by the including module */
    Py_ssize_t offset;   /* -1: no fast path */
    int member_type;
} SlotEntry;

#define SLOT_WAYS 4  /* types per attribute name (a Step, a Usage, a Finished, and a spare) */

typedef struct {
    SlotEntry ways[SLOT_WAYS];
    unsigned int next;  /* the way a new type takes, round robin */
} SlotCache;

static int fail(const char *what) {
    PyErr_Format(PyExc_TypeError, "tierwise native: %s", what);
    return -1;
}

static PyObject *read_slot(PyObject *o, const SlotEntry *e) {
    PyObject *v = *(PyObject **)((char *)o + e->offset);
    if (v != NULL) {
        return Py_NewRef(v);
    }
    if (e->member_type == T_OBJECT) {
        return Py_NewRef(Py_None);
    }
    PyErr_SetObject(PyExc_AttributeError, e->name);
    return NULL;
}

/* getattr(o, name), by the cached offset when that is what getattr does. New reference. */
static PyObject *slot_get(PyObject *o, PyObject *name, SlotCache *cache) {
    PyTypeObject *t = Py_TYPE(o);
    if (!(t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        return PyObject_GetAttr(o, name);  /* (which gives the type a version tag for next time) */
    }
    SlotEntry *ways = cache->ways, *e = NULL;
    for (int i = 0; i < SLOT_WAYS; i++) {
        if (ways[i].type == t) {
            e = &ways[i];
            break;
        }
    }
    if (e == NULL || e->version != t->tp_version_tag) {
        Py_ssize_t offset = -1;
        int member_type = 0;
        if (t->tp_getattro == PyObject_GenericGetAttr) {
            PyObject *d = _PyType_Lookup(t, name);  /* borrowed */
            if (d != NULL && Py_IS_TYPE(d, &PyMemberDescr_Type) && PyType_IsSubtype(t, PyDescr_TYPE(d))) {
                PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
                if ((m->type == T_OBJECT_EX || m->type == T_OBJECT) && !(m->flags & PY_AUDIT_READ) && m->offset > 0 &&
                    (size_t)m->offset + sizeof(PyObject *) <= (size_t)t->tp_basicsize) {
                    offset = m->offset;
                    member_type = m->type;
                }
            }
        }
        if (!(t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
            return PyObject_GetAttr(o, name);
        }
        if (e == NULL) {  /* a new type for this name */
            e = &ways[cache->next++ % SLOT_WAYS];
        }
        e->type = t;
        e->version = t->tp_version_tag;
        e->name = name;
        e->offset = offset;
        e->member_type = member_type;
    }
    if (e->offset < 0) {
        return PyObject_GetAttr(o, name);
    }
    return read_slot(o, e);
}

/* A float, or an int a double holds exactly (so that Python's float(x), x + 0.0 and x / 1000 give what the
   double does). Anything else (bools included) is declined. */
static inline int as_double(PyObject *o, double *out) {
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    if (PyLong_CheckExact(o)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow || v > (1LL << 53) || v < -(1LL << 53)) {
            return fail("integer too large for a float");
        }
        *out = (double)v;
        return 0;
    }
    return fail("not a number");
}

#endif
