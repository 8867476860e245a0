/* The token hashes of a lower-cased prompt, for routers/features.py `token_hashes`: the same tokens as its
   pure-Python path (the regular expression `[a-z0-9]+|[^\sa-z0-9]`, `\s` being Py_UNICODE_ISSPACE as in `re`),
   the same CRC-32 as zlib over each token's UTF-8 bytes, in one pass over the text instead of a Python string
   per token. Built by setup.py as an optional extension; without it features.py does the same in Python.

   hashes(low: str) -> bytes | None: int64 values in native order — "w:" + every word, "b:" + every pair of
   neighbouring words joined by a space, "c:" + every 4 characters of the words joined by spaces — or None when
   the text holds a lone surrogate (no UTF-8 for it: the Python path raises there, as it always has) or is too
   long for 32-bit offsets (over 800 million characters: the Python path then).

   bucket_counts(hashes: buffer of int64, mask: int) -> (bytearray, bytearray): the distinct values of
   `hashes & mask` in ascending order (int32, native order) and how often each occurs (float32) — what
   `np.unique(hashes & mask, return_counts=True)` gives, by a radix sort of 8-bit digits instead of numpy's
   sort and its calls (learning/request_model.py reads a request's bucket counts with it). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t table[4][256]; /* table[0]: one byte's step; table[k]: that step followed by k zero bytes */
static uint32_t start_w, start_b, start_c; /* the register after "w:", "b:", "c:" */

static inline uint32_t crc_bytes(uint32_t reg, const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) { /* four bytes a step ("slicing by 4"): the same register as four byte steps */
        reg ^= (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
        reg = table[3][reg & 0xFF] ^ table[2][(reg >> 8) & 0xFF] ^ table[1][(reg >> 16) & 0xFF] ^ table[0][reg >> 24];
    }
    for (; i < n; i++) {
        reg = table[0][(reg ^ p[i]) & 0xFF] ^ (reg >> 8);
    }
    return reg;
}

static inline int is_word_char(Py_UCS4 c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

static inline uint32_t utf8(Py_UCS4 c, unsigned char *out) {
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (c >> 18));
    out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

static PyObject *hashes(PyObject *m, PyObject *text) {
    (void)m;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "hashes(str)");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    /* The words joined by single spaces, as UTF-8 (at most 4 bytes a character plus a space each), the byte
       offset of every character of it (plus the end), and each word's first and end byte. */
    if (n > 800000000) {
        Py_RETURN_NONE;
    }
    unsigned char *joined = PyMem_Malloc((size_t)n * 5 + 1);
    uint32_t *char_at = PyMem_Malloc(sizeof(uint32_t) * ((size_t)n * 2 + 1));
    uint32_t *word_at = PyMem_Malloc(sizeof(uint32_t) * ((size_t)n * 2 + 2));
    if (joined == NULL || char_at == NULL || word_at == NULL) {
        PyMem_Free(joined);
        PyMem_Free(char_at);
        PyMem_Free(word_at);
        return PyErr_NoMemory();
    }
    uint32_t bytes = 0;
    Py_ssize_t chars = 0, words = 0;
    int in_word = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0xD800 && c <= 0xDFFF) {
            PyMem_Free(joined);
            PyMem_Free(char_at);
            PyMem_Free(word_at);
            Py_RETURN_NONE;
        }
        int word_char = is_word_char(c);
        if (word_char && in_word) { /* the run goes on */
            char_at[chars++] = bytes;
            bytes += utf8(c, joined + bytes);
            continue;
        }
        if (in_word) { /* the run ends */
            word_at[2 * words - 1] = bytes;
            in_word = 0;
        }
        if (!word_char && Py_UNICODE_ISSPACE(c)) {
            continue;
        }
        if (words > 0) {
            char_at[chars++] = bytes;
            joined[bytes++] = ' ';
        }
        word_at[2 * words] = bytes;
        words++;
        char_at[chars++] = bytes;
        bytes += utf8(c, joined + bytes);
        if (word_char) {
            in_word = 1;
        } else {
            word_at[2 * words - 1] = bytes; /* a single-character token */
        }
    }
    if (in_word) {
        word_at[2 * words - 1] = bytes;
    }
    char_at[chars] = bytes;
    Py_ssize_t pairs = words > 1 ? words - 1 : 0, grams = chars > 3 ? chars - 3 : 0;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (words + pairs + grams) * (Py_ssize_t)sizeof(int64_t));
    if (out != NULL) {
        int64_t *h = (int64_t *)PyBytes_AS_STRING(out);
        for (Py_ssize_t w = 0; w < words; w++) {
            h[w] = ~crc_bytes(start_w, joined + word_at[2 * w], word_at[2 * w + 1] - word_at[2 * w]) & 0xFFFFFFFFu;
        }
        h += words;
        for (Py_ssize_t w = 0; w < pairs; w++) {
            h[w] = ~crc_bytes(start_b, joined + word_at[2 * w], word_at[2 * w + 3] - word_at[2 * w]) & 0xFFFFFFFFu;
        }
        h += pairs;
        for (Py_ssize_t g = 0; g < grams; g++) {
            h[g] = ~crc_bytes(start_c, joined + char_at[g], char_at[g + 4] - char_at[g]) & 0xFFFFFFFFu;
        }
    }
    PyMem_Free(joined);
    PyMem_Free(char_at);
    PyMem_Free(word_at);
    return out;
}

static PyObject *bucket_counts(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    (void)m;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "bucket_counts(hashes, mask)");
        return NULL;
    }
    unsigned long long mask = PyLong_AsUnsignedLongLong(args[1]);
    if (mask == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (mask > 0x7FFFFFFFull) {
        PyErr_SetString(PyExc_ValueError, "bucket_counts: mask must fit in 31 bits");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return NULL;
    }
    size_t flen = view.format != NULL ? strlen(view.format) : 0;
    if (view.itemsize != 8 || flen == 0 || (view.format[flen - 1] != 'l' && view.format[flen - 1] != 'q')
        || (flen == 2 && view.format[0] != '=' && view.format[0] != '@') || flen > 2) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "bucket_counts: hashes must be a contiguous native int64 buffer");
        return NULL;
    }
    Py_ssize_t n = view.len / 8;
    const int64_t *h = (const int64_t *)view.buf;
    uint32_t *a = PyMem_Malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    uint32_t *b = PyMem_Malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    if (a == NULL || b == NULL) {
        PyMem_Free(a);
        PyMem_Free(b);
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        a[i] = (uint32_t)((uint64_t)h[i] & mask);
    }
    PyBuffer_Release(&view);
    /* least significant digit first: each pass is stable, so after the pass over the mask's top digit the
       values are in ascending order */
    for (int shift = 0; shift < 32 && (mask >> shift) != 0; shift += 8) {
        Py_ssize_t count[257] = {0};
        for (Py_ssize_t i = 0; i < n; i++) {
            count[((a[i] >> shift) & 0xFF) + 1]++;
        }
        for (int d = 0; d < 256; d++) {
            count[d + 1] += count[d];
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            b[count[(a[i] >> shift) & 0xFF]++] = a[i];
        }
        uint32_t *t = a;
        a = b;
        b = t;
    }
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i == 0 || a[i] != a[i - 1]) {
            distinct++;
        }
    }
    PyObject *idx = PyByteArray_FromStringAndSize(NULL, distinct * (Py_ssize_t)sizeof(int32_t));
    PyObject *cnt = PyByteArray_FromStringAndSize(NULL, distinct * (Py_ssize_t)sizeof(float));
    if (idx == NULL || cnt == NULL) {
        Py_XDECREF(idx);
        Py_XDECREF(cnt);
        PyMem_Free(a);
        PyMem_Free(b);
        return NULL;
    }
    int32_t *oi = (int32_t *)PyByteArray_AS_STRING(idx);
    float *oc = (float *)PyByteArray_AS_STRING(cnt);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n;) {
        Py_ssize_t j = i + 1;
        while (j < n && a[j] == a[i]) {
            j++;
        }
        oi[k] = (int32_t)a[i];
        oc[k] = (float)(j - i); /* as numpy casts its int64 counts to float32 */
        k++;
        i = j;
    }
    PyMem_Free(a);
    PyMem_Free(b);
    PyObject *out = PyTuple_Pack(2, idx, cnt);
    Py_DECREF(idx);
    Py_DECREF(cnt);
    return out;
}

static PyMethodDef methods[] = {
    {"hashes", hashes, METH_O, "CRC-32 of the word, word-pair and 4-character tokens of a lower-cased text."},
    {"bucket_counts", (PyCFunction)(void (*)(void))bucket_counts, METH_FASTCALL,
     "The distinct values of hashes & mask, ascending (int32), and their counts (float32)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tokenhash", NULL, -1, methods};

PyMODINIT_FUNC PyInit__tokenhash(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        }
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int k = 1; k < 4; k++) {
            table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xFF];
        }
    }
    start_w = crc_bytes(0xFFFFFFFFu, (const unsigned char *)"w:", 2);
    start_b = crc_bytes(0xFFFFFFFFu, (const unsigned char *)"b:", 2);
    start_c = crc_bytes(0xFFFFFFFFu, (const unsigned char *)"c:", 2);
    return PyModule_Create(&module);
}
