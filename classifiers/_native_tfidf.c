/* classifiers._native_tfidf: the fast path's two TF-IDF dot products for one prompt, in C.
 *
 * The same computation as `_TfidfPart.bind` in classifiers/fastpath.py, which stays the reference (and the
 * fallback): count the vocabulary columns of the prompt's known n-grams, then return
 *     sum(tf * num_w[col]) / norm(tf * w[col])
 * with num_w = idf * coef and w = idf, prepared once in Python (classifiers/native.py), from tables built
 * here once from the vocabulary's terms. The n-grams are exactly scikit-learn's:
 *   char analyzer: doc = str.lower(text); re.sub(r"\s\s+", " ", doc); every substring of length lo..hi
 *   word analyzer: doc = str.lower(text); re.findall(r"(?u)\b\w\w+\b", doc); n-grams of consecutive tokens
 * Comments marked "Python:" name the Python semantics a piece of code reproduces.
 *
 * Text is read as code points (PEP 393 strings hold any code point, lone surrogates included), so every str
 * is handled exactly; anything else (a str subclass, whose lower() could differ) goes to the Python fallback.
 * The GIL is held for the whole call and no Python code runs while the per-object scratch arrays are in use.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bump together with classifiers/native.py's NATIVE_VERSION whenever this module's interface or results
 * change: a build with another number is refused and the Python path is used. */
#define NATIVE_VERSION 1

#ifndef THINKGATE_SOURCE_SHA256 /* setup.py passes the SHA-256 of this file, so a stale build is detectable */
#define THINKGATE_SOURCE_SHA256 ""
#endif

#define MAX_WORD_N 8        /* longest word n-gram supported */
#define STACK_CHARS 2048    /* prompts up to this many code points need no heap buffer */

enum { KIND_CHAR = 1, KIND_WORD = 2 };
enum { NORM_NONE = 0, NORM_L1 = 1, NORM_L2 = 2 };

/* -- character classes, as `re` defines them for str patterns ---------------------------------------- */

/* Python: `\w` in a str pattern is sre's SRE_UNI_IS_WORD, i.e. Py_UNICODE_ISALNUM(ch) || ch == '_' (the
 * same per-character test as str.isalnum()); `\s` is SRE_UNI_IS_SPACE, i.e. Py_UNICODE_ISSPACE(ch). ASCII
 * answers are tabulated once at import from the same macros. */
static unsigned char ascii_word[128];

static inline int
is_word(Py_UCS4 c)
{
    if (c < 128) {
        return ascii_word[c];
    }
    return Py_UNICODE_ISALNUM(c) ? 1 : 0;
}

static inline int
is_space(Py_UCS4 c)
{
    return Py_UNICODE_ISSPACE(c) ? 1 : 0;  /* an ASCII table lookup below 128 */
}

/* -- a hash table keyed by short sequences of uint32 (a token's code points, or n token ids) ------------- */

typedef struct {
    uint32_t hash;       /* the key hash's high half (its low bits chose the slot) */
    uint32_t off, len;   /* the key is pool[off:off + len]; len == 0 marks an empty slot */
    int32_t value;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;         /* slot count - 1 (a power of two, at least twice the number of keys) */
    uint32_t *pool;
    size_t pool_len, pool_cap;
} KeyTable;

static inline uint64_t
hash_key(const uint32_t *key, size_t len)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)len;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ key[i]) * 0x100000001B3ULL;
    }
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return h;
}

static int
table_init(KeyTable *t, size_t nkeys, size_t pool_cap)
{
    size_t size = 16;
    while (size < 2 * nkeys + 1) {
        size <<= 1;
    }
    t->slots = PyMem_Calloc(size, sizeof(Slot));
    t->pool = PyMem_Malloc((pool_cap ? pool_cap : 1) * sizeof(uint32_t));
    t->mask = size - 1;
    t->pool_len = 0;
    t->pool_cap = pool_cap;
    if (t->slots == NULL || t->pool == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void
table_free(KeyTable *t)
{
    PyMem_Free(t->slots);
    PyMem_Free(t->pool);
    t->slots = NULL;
    t->pool = NULL;
}

/* The value stored for `key`, or -1. The table is at most half full, so the probe ends at an empty slot. */
static inline int32_t
table_find(const KeyTable *t, const uint32_t *key, size_t len)
{
    uint64_t h = hash_key(key, len);
    size_t i = (size_t)h & t->mask;
    for (;;) {
        const Slot *s = &t->slots[i];
        if (s->len == 0) {
            return -1;
        }
        if (s->hash == (uint32_t)(h >> 32) && s->len == len && memcmp(t->pool + s->off, key, len * sizeof(uint32_t)) == 0) {
            return s->value;
        }
        i = (i + 1) & t->mask;
    }
}

/* Adds a key (1 <= len, fits the pool reserved by table_init). A key already present is an error. */
static int
table_add(KeyTable *t, const uint32_t *key, size_t len, int32_t value)
{
    if (len == 0 || len > UINT32_MAX || t->pool_len + len > t->pool_cap) {
        PyErr_SetString(PyExc_ValueError, "key table overflow");
        return -1;
    }
    uint64_t h = hash_key(key, len);
    size_t i = (size_t)h & t->mask;
    for (;;) {
        Slot *s = &t->slots[i];
        if (s->len == 0) {
            memcpy(t->pool + t->pool_len, key, len * sizeof(uint32_t));
            s->hash = (uint32_t)(h >> 32);
            s->off = (uint32_t)t->pool_len;
            s->len = (uint32_t)len;
            s->value = value;
            t->pool_len += len;
            return 0;
        }
        if (s->hash == (uint32_t)(h >> 32) && s->len == len
            && memcmp(t->pool + s->off, key, len * sizeof(uint32_t)) == 0) {
            PyErr_SetString(PyExc_ValueError, "duplicate key");
            return -1;
        }
        i = (i + 1) & t->mask;
    }
}

/* -- character n-grams: the vocabulary's characters as digits, an n-gram as a number --------------------
 *
 * The A distinct characters of the vocabulary's terms are numbered 1 .. A (digit 0: any other character),
 * so an n-gram of vocabulary characters is the number d1 * B^(n-1) + ... + dn in base B = A + 1 (a uint64:
 * B^hi must fit, e.g. 4-grams over up to 65535 characters). Distinct n-grams of any length >= 2 give distinct numbers, as no digit is 0. One
 * open-addressing table maps the number of every term, and of every proper prefix of a term, to its column
 * and a flag LONGER: "some longer term starts with this". The n-grams starting at position i are then
 * looked up in order of length, and the walk stops at the first n-gram that is no prefix of a term (no
 * longer n-gram from i can be a term), so most positions cost one or two lookups. A term's slot also holds
 * its count and weights: the cost is cache misses (a prompt touches hundreds of terms, and the rest of a
 * decision evicts the table between prompts), and this way a term found costs one cache line, not three. */

#define LONGER 0x80000000u          /* in a value: a longer term starts with this n-gram */
#define COLUMN_BITS 0x7FFFFFFFu     /* in a value: the term's column + 1, 0: no term */

typedef struct {
    uint64_t key;                   /* the n-gram's number (>= B + 1); 0 marks an empty slot */
    uint32_t value;                 /* LONGER | column + 1 */
    int32_t count;                  /* scratch: the term's occurrences in this call, 0 between calls */
    double num_w, w;                /* the term's weights: once found, its count and weights are in cache */
} GramSlot;                         /* 32 bytes: two a cache line */

static inline uint32_t
gram_slot(uint64_t key, int shift)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    return (uint32_t)((h ^ (h >> 29)) >> shift);
}

/* Re-hashes a table built from an upper bound of its keys into the smallest one at most half full. */
static int
table_compact(KeyTable *t)
{
    size_t used = 0, size = 16;
    for (size_t i = 0; i <= t->mask; i++) {
        used += t->slots[i].len != 0;
    }
    while (size < 2 * used + 1) {
        size <<= 1;
    }
    Slot *slots = PyMem_Calloc(size, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        Slot s = t->slots[i];
        if (s.len != 0) {
            size_t j = (size_t)hash_key(t->pool + s.off, s.len) & (size - 1);
            while (slots[j].len != 0) {
                j = (j + 1) & (size - 1);
            }
            slots[j] = s;
        }
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

/* -- the bound dot-product object ------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind, lo, hi, lowercase, binary, sublinear, norm;
    Py_ssize_t dim;
    double *weights;     /* per column: num_w = idf * coef, then w = idf (or 1), side by side */
    int32_t *counts;     /* scratch: per column, all zero between calls */
    int32_t *touched;    /* scratch: the distinct columns counted in this call, in first-seen order */
    PyObject *fallback;  /* the Python bound dot, for what this object declines */
    /* char analyzer */
    uint32_t base;       /* B = number of alphabet characters + 1 */
    uint32_t ascii_digit[128];
    Py_UCS4 *wide;       /* the alphabet's non-ASCII characters, ascending: wide[k] has digit wide_digit0 + k */
    Py_ssize_t nwide;
    uint32_t wide_digit0;
    GramSlot *first;     /* per digit: the character as a 1-gram (value LONGER | column + 1, no key) */
    GramSlot **touched_slots; /* scratch: the slots counted in this call, first-seen order */
    GramSlot *gram;
    uint32_t gram_mask;
    int gram_shift;      /* 64 - log2(slot count) */
    /* word analyzer */
    KeyTable tokens;     /* token code points -> token id */
    int32_t *token_column; /* per token id: the column of the token as a 1-gram (-1: none) */
    Py_ssize_t ntokens;
    KeyTable grams;      /* n >= 2 token ids -> column */
} TfidfDot;

static PyTypeObject TfidfDot_Type;
static PyObject *str_lower;  /* interned "lower" */

static inline void
count_column(TfidfDot *self, int32_t col, Py_ssize_t *ntouched)
{
    if (self->counts[col]++ == 0) {
        self->touched[(*ntouched)++] = col;
    }
}

static inline uint32_t
digit_of(const TfidfDot *self, uint32_t c)
{
    if (c < 128) {
        return self->ascii_digit[c];
    }
    Py_ssize_t lo = 0, hi = self->nwide;  /* binary search: non-ASCII characters are rare in prompts */
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (self->wide[mid] < c) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo < self->nwide && self->wide[lo] == c ? self->wide_digit0 + (uint32_t)lo : 0;
}

static GramSlot no_slot;  /* what a failed lookup returns: value 0 (no term, no longer term); never written */

static inline GramSlot *
gram_find(const TfidfDot *self, uint64_t key)
{
    uint32_t i = gram_slot(key, self->gram_shift);
    for (;;) {
        GramSlot *s = &self->gram[i];
        if (s->key == key) {
            return s;
        }
        if (s->key == 0) {
            return &no_slot;
        }
        i = (i + 1) & self->gram_mask;
    }
}

static inline void
count_slot(TfidfDot *self, GramSlot *s, Py_ssize_t *ntouched)
{
    if (s->count++ == 0) {
        self->touched_slots[(*ntouched)++] = s;
    }
}

/* Python: re.sub(r"\s\s+", " ", doc). The pattern matches, leftmost and greedy, every maximal run of two or
 * more whitespace characters; a lone whitespace character is kept as it is. In place; returns the length. */
static Py_ssize_t
fold_whitespace(uint32_t *doc, Py_ssize_t n)
{
    Py_ssize_t out = 0, i = 0;
    while (i < n) {
        if (i + 1 < n && is_space(doc[i]) && is_space(doc[i + 1])) {
            i += 2;
            while (i < n && is_space(doc[i])) {
                i++;
            }
            doc[out++] = ' ';
        }
        else {
            doc[out++] = doc[i++];
        }
    }
    return out;
}

/* Python: sklearn's _char_ngrams after the folding: if lo == 1 every character, then for n = 2 .. hi every
 * doc[i:i + n] with n >= lo. The tables hold only terms of length lo .. hi (shorter prefixes have no
 * column), so n-grams of other lengths are never counted. The doc's code points become digits in place. */
static Py_ssize_t
char_columns(TfidfDot *self, uint32_t *doc, Py_ssize_t n)
{
    Py_ssize_t ntouched = 0;
    const uint32_t base = self->base;
    const int hi = self->hi;
    for (Py_ssize_t i = 0; i < n; i++) {
        doc[i] = digit_of(self, doc[i]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = doc[i];
        if (key == 0) {
            continue;  /* no term contains this character */
        }
        GramSlot *s = &self->first[key];
        if (s->value & COLUMN_BITS) {
            count_slot(self, s, &ntouched);
        }
        Py_ssize_t longest = n - i < hi ? n - i : hi;
        for (Py_ssize_t len = 2; len <= longest && (s->value & LONGER); len++) {
            uint32_t d = doc[i + len - 1];
            if (d == 0) {
                break;
            }
            key = key * base + d;  /* no overflow: B^hi fits a uint64 */
            s = gram_find(self, key);
            if (s->value & COLUMN_BITS) {
                count_slot(self, s, &ntouched);
            }
        }
    }
    return ntouched;
}

/* Python: tokens = re.findall(r"\w{2,}", doc) (the default token pattern's exact tokens: every maximal run of
 * two or more word characters), then sklearn's _word_ngrams: the tokens if lo == 1, then for n = max(lo, 2)
 * .. hi the n consecutive tokens joined by " ". A token missing from the token table is in no term, so no
 * n-gram containing it is looked up (only to save the lookups: its id -1 is in no key). A token's 1-gram
 * column is set only when lo == 1. */
static Py_ssize_t
word_columns(TfidfDot *self, const uint32_t *doc, Py_ssize_t n)
{
    Py_ssize_t ntouched = 0;
    const int lo = self->lo, hi = self->hi;
    uint32_t recent[MAX_WORD_N];  /* token ids, oldest first: recent[hi - 1] is the newest */
    int known = 0;                /* how many of the newest tokens are in the token table, consecutively */
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_word(doc[i])) {
            i++;
            continue;
        }
        Py_ssize_t j = i + 1;
        while (j < n && is_word(doc[j])) {
            j++;
        }
        if (j - i >= 2) {
            int32_t id = table_find(&self->tokens, doc + i, (size_t)(j - i));
            memmove(recent, recent + 1, (size_t)(hi - 1) * sizeof(uint32_t));
            recent[hi - 1] = (uint32_t)id;
            known = id < 0 ? 0 : known < hi ? known + 1 : hi;
            if (id >= 0 && self->token_column[id] >= 0) {
                count_column(self, self->token_column[id], &ntouched);
            }
            for (int len = lo > 2 ? lo : 2; len <= known; len++) {
                int32_t col = table_find(&self->grams, recent + hi - len, (size_t)len);
                if (col >= 0) {
                    count_column(self, col, &ntouched);
                }
            }
        }
        i = j;
    }
    return ntouched;
}

/* The tf of a count (Python: sublinear 1 + log(tf), binary 1), reset of the scratch, and the dot product
 * sum(tf * num_w) / norm(tf * w), as python_dot / packed_dot in fastpath.py. */
static double
finish(TfidfDot *self, Py_ssize_t ntouched)
{
    double num = 0.0, total = 0.0;
    for (Py_ssize_t k = 0; k < ntouched; k++) {
        int32_t col = self->touched[k];
        int32_t c = self->counts[col];
        self->counts[col] = 0;
        double tf = (self->binary || c == 1) ? 1.0 : self->sublinear ? log((double)c) + 1.0 : (double)c;
        num += tf * self->weights[2 * col];
        double v = tf * self->weights[2 * col + 1];
        total += self->norm == NORM_L2 ? v * v : fabs(v);
    }
    if (self->norm == NORM_NONE) {
        return num;
    }
    double length = self->norm == NORM_L2 ? sqrt(total) : total;
    return length > 0 ? num / length : num;
}

/* finish() for the char analyzer, whose counts and weights are in its table's slots. */
static double
finish_char(TfidfDot *self, Py_ssize_t ntouched)
{
    double num = 0.0, total = 0.0;
    for (Py_ssize_t k = 0; k < ntouched; k++) {
        GramSlot *s = self->touched_slots[k];
        int32_t c = s->count;
        s->count = 0;
        double tf = (self->binary || c == 1) ? 1.0 : self->sublinear ? log((double)c) + 1.0 : (double)c;
        num += tf * s->num_w;
        double v = tf * s->w;
        total += self->norm == NORM_L2 ? v * v : fabs(v);
    }
    if (self->norm == NORM_NONE) {
        return num;
    }
    double length = self->norm == NORM_L2 ? sqrt(total) : total;
    return length > 0 ? num / length : num;
}

/* Counts the columns of `text` into the scratch arrays: 1 and *ntouched set, 0 if declined (the caller uses
 * the fallback), -1 with an exception set. */
static int
count_text(TfidfDot *self, PyObject *text, Py_ssize_t *ntouched)
{
    if (!PyUnicode_CheckExact(text)) {
        return 0;  /* a str subclass may override lower(): the Python path calls it as it should */
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return -1;
    }
#endif
    PyObject *lowered = NULL;
    int ascii_lower = 0;
    if (self->lowercase) {
        if (PyUnicode_IS_ASCII(text)) {
            ascii_lower = 1;  /* Python: str.lower() of an ASCII str maps exactly A-Z to a-z */
        }
        else {
            lowered = PyObject_CallMethodNoArgs(text, str_lower);  /* Python: str.lower(), special cases included */
            if (lowered == NULL) {
                return -1;
            }
            if (!PyUnicode_CheckExact(lowered)) {
                Py_DECREF(lowered);
                return 0;
            }
            text = lowered;
        }
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (n >= INT32_MAX) {
        Py_XDECREF(lowered);
        return 0;  /* a count could overflow its int32 */
    }
    uint32_t stack[STACK_CHARS];
    uint32_t *doc = stack;
    if (n > STACK_CHARS) {
        doc = PyMem_Malloc((size_t)n * sizeof(uint32_t));
        if (doc == NULL) {
            Py_XDECREF(lowered);
            PyErr_NoMemory();
            return -1;
        }
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *s = data;
        if (ascii_lower) {
            for (Py_ssize_t i = 0; i < n; i++) {
                doc[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32u : s[i];
            }
        }
        else {
            for (Py_ssize_t i = 0; i < n; i++) {
                doc[i] = s[i];
            }
        }
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *s = data;
        for (Py_ssize_t i = 0; i < n; i++) {
            doc[i] = s[i];
        }
    }
    else {
        memcpy(doc, data, (size_t)n * sizeof(uint32_t));
    }
    Py_XDECREF(lowered);

    if (self->kind == KIND_CHAR) {
        n = fold_whitespace(doc, n);
        *ntouched = char_columns(self, doc, n);
    }
    else {
        *ntouched = word_columns(self, doc, n);
    }
    if (doc != stack) {
        PyMem_Free(doc);
    }
    return 1;
}

/* dot(text, dets=None) -> float: the part's contribution to the score (dets is ignored). */
static PyObject *
TfidfDot_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TfidfDot *self = (TfidfDot *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) || nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "expected (text, dets=None) as positional arguments");
        return NULL;
    }
    Py_ssize_t ntouched = 0;
    int got = count_text(self, args[0], &ntouched);
    if (got < 0) {
        return NULL;
    }
    if (got == 0) {
        PyObject *both[2] = {args[0], nargs == 2 ? args[1] : Py_None};
        return PyObject_Vectorcall(self->fallback, both, 2, NULL);
    }
    return PyFloat_FromDouble(self->kind == KIND_CHAR ? finish_char(self, ntouched) : finish(self, ntouched));
}

/* counts(text) -> {column: count} of the known n-grams, or None where the call would use the fallback. */
static PyObject *
TfidfDot_counts(TfidfDot *self, PyObject *text)
{
    Py_ssize_t ntouched = 0;
    int got = count_text(self, text, &ntouched);
    if (got < 0) {
        return NULL;
    }
    if (got == 0) {
        Py_RETURN_NONE;
    }
    /* copy out and reset the scratch before allocating objects (an allocation can run a collection, and a
     * finalizer could call this object again) */
    int32_t *pairs = PyMem_Malloc(2 * (size_t)(ntouched ? ntouched : 1) * sizeof(int32_t));
    for (Py_ssize_t k = 0; k < ntouched; k++) {
        int32_t col, c;
        if (self->kind == KIND_CHAR) {
            GramSlot *s = self->touched_slots[k];
            col = (int32_t)(s->value & COLUMN_BITS) - 1;
            c = s->count;
            s->count = 0;
        }
        else {
            col = self->touched[k];
            c = self->counts[col];
            self->counts[col] = 0;
        }
        if (pairs != NULL) {
            pairs[2 * k] = col;
            pairs[2 * k + 1] = c;
        }
    }
    if (pairs == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *out = PyDict_New();
    for (Py_ssize_t k = 0; k < ntouched && out != NULL; k++) {
        PyObject *key = PyLong_FromLong(pairs[2 * k]), *value = PyLong_FromLong(pairs[2 * k + 1]);
        if (key == NULL || value == NULL || PyDict_SetItem(out, key, value) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(key);
        Py_XDECREF(value);
    }
    PyMem_Free(pairs);
    return out;
}

static int
TfidfDot_traverse(TfidfDot *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    return 0;
}

static int
TfidfDot_clear(TfidfDot *self)
{
    Py_CLEAR(self->fallback);
    return 0;
}

static void
TfidfDot_dealloc(TfidfDot *self)
{
    PyObject_GC_UnTrack(self);
    TfidfDot_clear(self);
    PyMem_Free(self->weights);
    PyMem_Free(self->counts);
    PyMem_Free(self->touched);
    PyMem_Free(self->wide);
    PyMem_Free(self->first);
    PyMem_Free(self->touched_slots);
    PyMem_Free(self->gram);
    PyMem_Free(self->token_column);
    table_free(&self->tokens);
    table_free(&self->grams);
    PyObject_GC_Del(self);
}

static PyMethodDef TfidfDot_methods[] = {
    {"counts", (PyCFunction)TfidfDot_counts, METH_O,
     "counts(text) -> {column: count} of the known n-grams of text, or None if the call would fall back."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TfidfDot_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "classifiers._native_tfidf.TfidfDot",
    .tp_doc = "A TF-IDF part's dot product with its coefficients: dot(text, dets=None) -> float.",
    .tp_basicsize = sizeof(TfidfDot),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(TfidfDot, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)TfidfDot_traverse,
    .tp_clear = (inquiry)TfidfDot_clear,
    .tp_dealloc = (destructor)TfidfDot_dealloc,
    .tp_methods = TfidfDot_methods,
};

/* -- construction: tables built and checked here (bad input raises, never reads out of bounds) ---------- */

/* The part shared by both constructors: weights, flags, scratch, fallback. `columns` (int32 bytes, one per
 * term) must lie in [0, dim). */
static TfidfDot *
new_dot(int kind, Py_buffer *num_w, Py_buffer *w, int lo, int hi, int lowercase, int binary, int sublinear,
        int norm, PyObject *fallback)
{
    if (num_w->len != w->len || num_w->len % (Py_ssize_t)sizeof(double) != 0 || num_w->len == 0) {
        PyErr_SetString(PyExc_ValueError, "num_w and w must be float64 arrays of the same, non-zero length");
        return NULL;
    }
    if (norm < NORM_NONE || norm > NORM_L2) {
        PyErr_SetString(PyExc_ValueError, "norm must be 0 (none), 1 (l1) or 2 (l2)");
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return NULL;
    }
    Py_ssize_t dim = num_w->len / (Py_ssize_t)sizeof(double);
    if (dim >= (Py_ssize_t)COLUMN_BITS) {
        PyErr_SetString(PyExc_ValueError, "too many columns");
        return NULL;
    }
    TfidfDot *self = PyObject_GC_New(TfidfDot, &TfidfDot_Type);
    if (self == NULL) {
        return NULL;
    }
    /* everything owned starts NULL so that dealloc is safe at any point */
    memset((char *)self + sizeof(PyObject), 0, sizeof(TfidfDot) - sizeof(PyObject));
    self->vectorcall = TfidfDot_vectorcall;
    self->kind = kind;
    self->lo = lo;
    self->hi = hi;
    self->lowercase = lowercase;
    self->binary = binary;
    self->sublinear = sublinear;
    self->norm = norm;
    self->dim = dim;
    Py_INCREF(fallback);
    self->fallback = fallback;
    self->weights = PyMem_Malloc(2 * (size_t)dim * sizeof(double));
    self->counts = PyMem_Calloc((size_t)dim, sizeof(int32_t));
    self->touched = PyMem_Malloc((size_t)dim * sizeof(int32_t));
    PyObject_GC_Track(self);
    if (self->weights == NULL || self->counts == NULL || self->touched == NULL) {
        Py_DECREF(self);
        PyErr_NoMemory();
        return NULL;
    }
    const double *a = num_w->buf, *b = w->buf;
    for (Py_ssize_t j = 0; j < dim; j++) {
        self->weights[2 * j] = a[j];
        self->weights[2 * j + 1] = b[j];
    }
    return self;
}

/* terms (a list of str) as a tuple, with their columns checked against dim; NULL with an exception set. */
static PyObject *
checked_terms(PyObject *term_list, Py_buffer *columns, Py_ssize_t dim)
{
    PyObject *terms = PyList_AsTuple(term_list);  /* a tuple: nothing can change it while it is read */
    if (terms == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(terms);
    const int32_t *col = columns->buf;
    if (columns->len != n * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "need one int32 column per term");
        goto fail;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(terms, k))) {
            PyErr_SetString(PyExc_TypeError, "terms must be str");
            goto fail;
        }
        if (col[k] < -1 || col[k] >= dim) {
            PyErr_SetString(PyExc_ValueError, "column out of range");
            goto fail;
        }
    }
    return terms;
fail:
    Py_DECREF(terms);
    return NULL;
}

static int
compare_ucs4(const void *a, const void *b)
{
    Py_UCS4 x = *(const Py_UCS4 *)a, y = *(const Py_UCS4 *)b;
    return x < y ? -1 : x > y;
}

/* Sets value bits on the slot of `key` in a table of 2^bits slots (created empty if absent). */
static void
gram_set(GramSlot *slots, uint32_t mask, int shift, uint64_t key, uint32_t bits)
{
    uint32_t i = gram_slot(key, shift);
    while (slots[i].key != 0 && slots[i].key != key) {
        i = (i + 1) & mask;
    }
    slots[i].key = key;
    slots[i].value |= bits;
}

static void
slot_weights(const TfidfDot *self, GramSlot *s)
{
    int32_t col = (int32_t)(s->value & COLUMN_BITS) - 1;
    s->num_w = col >= 0 ? self->weights[2 * col] : 0.0;
    s->w = col >= 0 ? self->weights[2 * col + 1] : 0.0;
}

/* An empty n-gram table for `keys` keys: a power of two slots, at most 60% full. */
static int
gram_alloc(TfidfDot *self, size_t keys)
{
    int bits = 4;
    while (((size_t)1 << bits) * 3 < keys * 5) {
        bits++;
    }
    self->gram = PyMem_Calloc((size_t)1 << bits, sizeof(GramSlot));
    if (self->gram == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->gram_mask = (uint32_t)(((size_t)1 << bits) - 1);
    self->gram_shift = 64 - bits;
    return 0;
}

/* The digits, 1-gram values and n-gram table of the char analyzer's terms of length lo .. hi. */
static int
build_char_tables(TfidfDot *self, PyObject *terms, const int32_t *col)
{
    Py_ssize_t n = PyTuple_GET_SIZE(terms), nchars = 0, nkeys = 0;
    const int lo = self->lo, hi = self->hi;
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_ssize_t len = PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(terms, k));
        if (lo <= len && len <= hi) {
            nchars += len;
            nkeys += len - 1;
        }
    }
    /* the alphabet: the distinct characters of those terms, ascending; digit = rank + 1 */
    Py_UCS4 *chars = PyMem_Malloc((size_t)(nchars ? nchars : 1) * sizeof(Py_UCS4));
    if (chars == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *t = PyTuple_GET_ITEM(terms, k);
        Py_ssize_t len = PyUnicode_GET_LENGTH(t);
        if (lo <= len && len <= hi) {
            for (Py_ssize_t i = 0; i < len; i++) {
                chars[m++] = PyUnicode_READ_CHAR(t, i);
            }
        }
    }
    qsort(chars, (size_t)m, sizeof(Py_UCS4), compare_ucs4);
    Py_ssize_t alphabet = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        if (alphabet == 0 || chars[alphabet - 1] != chars[i]) {
            chars[alphabet++] = chars[i];
        }
    }
    uint64_t span = 1;  /* B^hi, the n-gram numbers' bound, must fit a uint64 */
    for (int i = 0; i < hi; i++) {
        if (span > UINT64_MAX / ((uint64_t)alphabet + 1)) {
            PyMem_Free(chars);
            PyErr_SetString(PyExc_ValueError, "character alphabet too large for 64-bit n-gram numbers");
            return -1;
        }
        span *= (uint64_t)alphabet + 1;
    }
    self->base = (uint32_t)alphabet + 1;
    Py_ssize_t nascii = 0;
    while (nascii < alphabet && chars[nascii] < 128) {
        self->ascii_digit[chars[nascii]] = (uint32_t)nascii + 1;
        nascii++;
    }
    self->nwide = alphabet - nascii;
    self->wide_digit0 = (uint32_t)nascii + 1;
    self->wide = PyMem_Malloc((size_t)(self->nwide ? self->nwide : 1) * sizeof(Py_UCS4));
    self->first = PyMem_Calloc((size_t)self->base, sizeof(GramSlot));
    /* one entry per term at most: a term has one slot, and no two terms share a column (checked below) */
    self->touched_slots = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(GramSlot *));
    /* slots for nkeys, an upper bound (prefixes are shared): compacted once the distinct keys are in */
    if (self->wide == NULL || self->first == NULL || self->touched_slots == NULL) {
        PyMem_Free(chars);
        PyErr_NoMemory();
        return -1;
    }
    if (gram_alloc(self, (size_t)nkeys) < 0) {
        PyMem_Free(chars);
        return -1;
    }
    if (self->nwide) {
        memcpy(self->wide, chars + nascii, (size_t)self->nwide * sizeof(Py_UCS4));
    }
    PyMem_Free(chars);
    /* every term's number gets its column, every proper prefix (from length 1) the LONGER flag. Counts are
     * kept per slot, so two terms with one column (no vectorizer makes that) would count apart: refused. */
    unsigned char *column_used = PyMem_Calloc((size_t)self->dim, 1);
    if (column_used == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *t = PyTuple_GET_ITEM(terms, k);
        Py_ssize_t len = PyUnicode_GET_LENGTH(t);
        if (len < lo || len > hi || col[k] < 0) {
            continue;
        }
        if (column_used[col[k]]++) {
            PyMem_Free(column_used);
            PyErr_SetString(PyExc_ValueError, "two terms share a column");
            return -1;
        }
        uint64_t key = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            key = key * self->base + digit_of(self, PyUnicode_READ_CHAR(t, i));
            uint32_t bits_here = i + 1 == len ? (uint32_t)col[k] + 1 : LONGER;
            if (i == 0) {
                if (i + 1 == len && (self->first[key].value & COLUMN_BITS)) {
                    PyMem_Free(column_used);
                    goto duplicate;
                }
                self->first[key].value |= bits_here;
            }
            else {
                if (i + 1 == len && (gram_find(self, key)->value & COLUMN_BITS)) {
                    PyMem_Free(column_used);
                    goto duplicate;
                }
                gram_set(self->gram, self->gram_mask, self->gram_shift, key, bits_here);
            }
        }
    }
    PyMem_Free(column_used);
    /* the table again, sized for the distinct keys */
    GramSlot *big = self->gram;
    uint32_t big_mask = self->gram_mask;
    size_t used = 0;
    for (size_t i = 0; i <= big_mask; i++) {
        used += big[i].key != 0;
    }
    self->gram = NULL;
    if (gram_alloc(self, used) < 0) {
        PyMem_Free(big);
        return -1;
    }
    for (size_t i = 0; i <= big_mask; i++) {
        if (big[i].key != 0) {
            gram_set(self->gram, self->gram_mask, self->gram_shift, big[i].key, big[i].value);
        }
    }
    PyMem_Free(big);
    /* each term's weights into its slot */
    for (size_t i = 0; i <= self->gram_mask; i++) {
        slot_weights(self, &self->gram[i]);
    }
    for (uint32_t d = 0; d < self->base; d++) {
        slot_weights(self, &self->first[d]);
    }
    return 0;
duplicate:
    PyErr_SetString(PyExc_ValueError, "duplicate term");
    return -1;
}

PyDoc_STRVAR(char_dot_doc,
"char_dot(terms, columns, lo, hi, num_w, w, lowercase, binary, sublinear, norm, fallback) -> TfidfDot\n\n"
"A char-analyzer part: the vocabulary's terms (list of str) and their columns (int32 bytes, one per term),\n"
"float64 weights per column (bytes); norm is 0 (none), 1 (l1) or 2 (l2).");

/* The token and n-gram tables of the word analyzer's terms: a term is its words joined by single spaces. */
static int
build_word_tables(TfidfDot *self, PyObject *terms, const int32_t *col)
{
    Py_ssize_t n = PyTuple_GET_SIZE(terms);
    const int lo = self->lo, hi = self->hi;
    size_t pool = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        pool += (size_t)PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(terms, k));
    }
    /* at most one token per character of the terms */
    if (table_init(&self->tokens, pool, pool) < 0 || table_init(&self->grams, (size_t)n, (size_t)n * MAX_WORD_N) < 0) {
        return -1;
    }
    self->token_column = PyMem_Malloc((pool ? pool : 1) * sizeof(int32_t));
    if (self->token_column == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (col[k] < 0) {
            continue;
        }
        Py_ssize_t len = 0;
        uint32_t *cps = (uint32_t *)PyUnicode_AsUCS4Copy(PyTuple_GET_ITEM(terms, k));
        if (cps == NULL) {
            return -1;
        }
        len = PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(terms, k));
        /* split on " " (Python: term.split(" ")) into token ids, adding new tokens */
        uint32_t ids[MAX_WORD_N];
        int nwords = 0, usable = 1;
        Py_ssize_t start = 0;
        for (Py_ssize_t i = 0; i <= len; i++) {
            if (i < len && cps[i] != ' ') {
                continue;
            }
            Py_ssize_t wlen = i - start;
            if (nwords == hi || wlen < 2) {
                usable = 0;  /* too many words, or a word no text token can equal (tokens have >= 2 chars) */
                break;
            }
            int32_t id = table_find(&self->tokens, cps + start, (size_t)wlen);
            if (id < 0) {
                id = (int32_t)self->ntokens;
                if (table_add(&self->tokens, cps + start, (size_t)wlen, id) < 0) {
                    PyMem_Free(cps);
                    return -1;
                }
                self->token_column[self->ntokens++] = -1;
            }
            ids[nwords++] = (uint32_t)id;
            start = i + 1;
        }
        PyMem_Free(cps);
        if (!usable || nwords < lo) {
            continue;  /* a term the analyzer never produces */
        }
        if (nwords == 1) {
            if (self->token_column[ids[0]] >= 0) {
                PyErr_SetString(PyExc_ValueError, "duplicate term");
                return -1;
            }
            self->token_column[ids[0]] = col[k];
        }
        else if (table_add(&self->grams, ids, (size_t)nwords, col[k]) < 0) {
            return -1;
        }
    }
    return table_compact(&self->tokens) < 0 || table_compact(&self->grams) < 0 ? -1 : 0;
}

PyDoc_STRVAR(word_dot_doc,
"word_dot(terms, columns, lo, hi, num_w, w, lowercase, binary, sublinear, norm, fallback) -> TfidfDot\n\n"
"A word-analyzer part for scikit-learn's default token pattern; arguments as for char_dot.");

typedef int (*build_tables_fn)(TfidfDot *self, PyObject *terms, const int32_t *col);

/* char_dot and word_dot: parse the arguments (`format` names the function), check 1 <= lo <= hi <= max_n,
   make the object and fill its tables with `build`. */
static PyObject *
new_part(PyObject *args, const char *format, int kind, int max_n, build_tables_fn build)
{
    PyObject *term_list, *fallback, *terms = NULL;
    Py_buffer columns = {0}, num_w = {0}, w = {0};
    int lo, hi, lowercase, binary, sublinear, norm;
    if (!PyArg_ParseTuple(args, format, &PyList_Type, &term_list, &columns, &lo, &hi, &num_w, &w, &lowercase,
                          &binary, &sublinear, &norm, &fallback)) {
        return NULL;
    }
    TfidfDot *self = NULL;
    if (!(1 <= lo && lo <= hi && hi <= max_n)) {
        PyErr_Format(PyExc_ValueError, "need 1 <= lo <= hi <= %d", max_n);
        goto done;
    }
    self = new_dot(kind, &num_w, &w, lo, hi, lowercase, binary, sublinear, norm, fallback);
    if (self == NULL || (terms = checked_terms(term_list, &columns, self->dim)) == NULL
        || build(self, terms, columns.buf) < 0) {
        Py_CLEAR(self);
    }
done:
    Py_XDECREF(terms);
    PyBuffer_Release(&columns);
    PyBuffer_Release(&num_w);
    PyBuffer_Release(&w);
    return (PyObject *)self;
}

static PyObject *
char_dot(PyObject *module, PyObject *args)
{
    return new_part(args, "O!y*iiy*y*pppiO:char_dot", KIND_CHAR, 16, build_char_tables);
}

static PyObject *
word_dot(PyObject *module, PyObject *args)
{
    return new_part(args, "O!y*iiy*y*pppiO:word_dot", KIND_WORD, MAX_WORD_N, build_word_tables);
}

PyDoc_STRVAR(classify_doc,
"classify(start, stop) -> bytes: per code point in [start, stop), bit 1 if this module takes it for a word\n"
"character (re's \\w), bit 2 for whitespace (re's \\s). For tests.");

static PyObject *
classify(PyObject *module, PyObject *args)
{
    long start, stop;
    if (!PyArg_ParseTuple(args, "ll:classify", &start, &stop)) {
        return NULL;
    }
    if (start < 0 || stop > 0x110000 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= start <= stop <= 0x110000");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, stop - start);
    if (out == NULL) {
        return NULL;
    }
    char *p = PyBytes_AS_STRING(out);
    for (long c = start; c < stop; c++) {
        p[c - start] = (char)(is_word((Py_UCS4)c) | (is_space((Py_UCS4)c) << 1));
    }
    return out;
}

static PyMethodDef module_methods[] = {
    {"char_dot", char_dot, METH_VARARGS, char_dot_doc},
    {"word_dot", word_dot, METH_VARARGS, word_dot_doc},
    {"classify", classify, METH_VARARGS, classify_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "classifiers._native_tfidf",
    .m_doc = "The fast path's TF-IDF dot products in C (see classifiers/native.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__native_tfidf(void)
{
    for (Py_UCS4 c = 0; c < 128; c++) {
        ascii_word[c] = (Py_UNICODE_ISALNUM(c) || c == '_') ? 1 : 0;
    }
    if (PyType_Ready(&TfidfDot_Type) < 0) {
        return NULL;
    }
    str_lower = PyUnicode_InternFromString("lower");
    if (str_lower == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "NATIVE_VERSION", NATIVE_VERSION) < 0
        || PyModule_AddStringConstant(m, "SOURCE_SHA256", THINKGATE_SOURCE_SHA256) < 0
        || PyModule_AddObjectRef(m, "TfidfDot", (PyObject *)&TfidfDot_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
