/* processors._fast: the per-article analysis loop of processors.analysis in C (optional accelerator).
 *
 * analyse_doc() does what processors.analysis._analyse_py does for one title + body: split each text into
 * sentences (normalize.split_sentences), split sentences into whitespace-delimited words (str.split), look each
 * word up in the existing word memo (Vocab._word_parts: the word's tokens and stems; a miss calls the memo, so the
 * Python normaliser/tokeniser/stemmer computes and memoises it exactly as before), build the Sentence objects
 * (with their token lists), mark the related-headline ("read also") lines (analysis._junk_flags) and scan each
 * sentence's stems for phrase hits (Knowledge.scan) in the Knowledge's own index1/index2 dicts.
 *
 * Nothing of the knowledge is copied: every call reads the dicts it is given. Text with Arabic presentation forms
 * (normalised as a whole with NFKC) is not handled here: analyse_doc returns None and the caller uses the Python
 * path. The results are the same Python structures, equal to the pure-Python ones (tests/processors/
 * test_fast_parity.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* --- characters ---------------------------------------------------------------------------------- */

/* sentence enders: [.!?؟؛;…] */
static inline int is_end(Py_UCS4 c) {
    if (c < 128)
        return c == '.' || c == '!' || c == '?' || c == ';';
    return c == 0x061F || c == 0x061B || c == 0x2026;
}

/* characters no sentence holds: enders and line breaks [\n\r\u2028\u2029] */
static inline int is_break(Py_UCS4 c) {
    if (c < 128)
        return c == '.' || c == '!' || c == '?' || c == ';' || c == '\n' || c == '\r';
    return c == 0x061F || c == 0x061B || c == 0x2026 || c == 0x2028 || c == 0x2029;
}

/* str.split() whitespace (Py_UNICODE_ISSPACE), without the function call for the letters between U+0100 and
 * U+167F (Arabic among them), none of which is whitespace */
static inline int is_space(Py_UCS4 c) {
    if (c >= 0x100 && c < 0x1680)
        return 0;
    return Py_UNICODE_ISSPACE(c);
}

/* normalize._STRIP: " \t\"'-•*" */
static inline int is_strip(Py_UCS4 c) {
    return c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '-' || c == 0x2022 || c == '*';
}

static inline int is_presentation(Py_UCS4 c) { return c >= 0xFB50 && c <= 0xFEFE; }

/* is_break / is_space by table for the characters below U+0800 (Latin, Arabic), filled from them at import */
#define CC_BREAK 1
#define CC_SPACE 2
#define CC_MAX 0x800
static unsigned char cclass[CC_MAX];

static void cclass_init(void) {
    for (Py_UCS4 c = 0; c < CC_MAX; c++)
        cclass[c] = (unsigned char)((is_break(c) ? CC_BREAK : 0) | (is_space(c) ? CC_SPACE : 0));
}

static inline int is_break_t(Py_UCS4 c) { return c < CC_MAX ? (cclass[c] & CC_BREAK) : is_break(c); }
static inline int is_space_t(Py_UCS4 c) { return c < CC_MAX ? (cclass[c] & CC_SPACE) : is_space(c); }

/* --- word memos ---------------------------------------------------------------------------------- */

/* memo[key] with the dict lookup in C; a missing key goes through the memo's __missing__ (computes and stores). */
static inline PyObject *memo_get(PyObject *memo, PyObject *key) {
    PyObject *v = PyDict_GetItemWithError(memo, key);
    if (v != NULL) {
        Py_INCREF(v);
        return v;
    }
    if (PyErr_Occurred())
        return NULL;
    return PyObject_GetItem(memo, key);
}

/* --- word cache ------------------------------------------------------------------------------------ */

/* A C mirror of the word memo (Vocab._word_parts): raw word (its code points) -> the memo's value, so that a known
 * word costs a hash of its characters and one probe instead of a new str object and a dict lookup. The memo stays
 * the source of truth: a word not in the mirror is looked up (or computed) through the memo and then mirrored. The
 * mirror belongs to one memo object (held, so its address cannot be reused) and is dropped when another memo is
 * passed or when the memo has shrunk since it was last seen (Vocab.add and the memo's size bound clear it; only
 * this accelerator reads that memo, so it cannot refill unseen). */

typedef struct {
    uint64_t h;       /* 0: empty slot */
    Py_ssize_t len;   /* code points */
    Py_UCS4 *chars;   /* owned copy */
    PyObject *parts;  /* strong: the memo's (tokens, stems) */
    uint64_t bits;    /* the word classes of its tokens and stems (normalize.TOKEN_BITS / STEM_BITS) */
    uint64_t firsts;  /* bit q: its stem q is in the scan's ``firsts`` (q < 64) */
    uint64_t seconds; /* bit q: its stem q is in the scan's ``seconds`` (all set without seconds) */
} WEntry;

#define WC_MAX (1 << 20) /* entries at most (then the mirror starts over) */

static WEntry *wc_tab = NULL;
static size_t wc_cap = 0, wc_used = 0;
static PyObject *wc_memo = NULL; /* strong */
static Py_ssize_t wc_memo_size = 0;
/* The word-class tables the mirrored bits were computed from (strong; NULL: none given), and how many classes they
 * held: a new class (analysis.word_class) or other tables drop the mirror, so every entry's bits are current. */
static PyObject *wc_tokbits = NULL, *wc_stembits = NULL;
static Py_ssize_t wc_nclasses = -1;
/* Likewise the phrase index's first and second stems the mirrored masks were computed from (strong; NULL: none),
 * with their sizes (the sets are built once per Knowledge; a changed one drops the mirror). */
static PyObject *wc_firsts = NULL, *wc_seconds = NULL;
static Py_ssize_t wc_nfirsts = -1, wc_nseconds = -1;

static void wc_clear(void) {
    for (size_t i = 0; i < wc_cap; i++) {
        if (wc_tab[i].h) {
            PyMem_Free(wc_tab[i].chars);
            Py_DECREF(wc_tab[i].parts);
        }
    }
    PyMem_Free(wc_tab);
    wc_tab = NULL;
    wc_cap = wc_used = 0;
}

static size_t wc_last = 0; /* slot of the entry mirrored last */

/* bind the mirror to ``memo`` for this call (dropping it when stale); -1 on error */
static int wc_bind(PyObject *memo, int check) {
    Py_ssize_t size = PyDict_GET_SIZE(memo);
    if (memo != wc_memo || size < wc_memo_size) {
        wc_clear();
        Py_INCREF(memo);
        Py_XSETREF(wc_memo, memo);
    } else if (check && wc_used) {
        /* the entry mirrored last must still be the memo's own value (a memo cleared and refilled since has new ones) */
        WEntry *e = &wc_tab[wc_last];
        PyObject *w = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, e->chars, e->len);
        if (w == NULL)
            return -1;
        PyObject *v = PyDict_GetItemWithError(memo, w);
        Py_DECREF(w);
        if (v == NULL && PyErr_Occurred())
            return -1;
        if (v != e->parts)
            wc_clear();
    }
    wc_memo_size = size;
    return 0;
}

static inline uint64_t wc_hash(const Py_UCS4 *c, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (uint64_t)c[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

/* the mirrored entry of the word, NULL if not mirrored */
static inline WEntry *wc_get(const Py_UCS4 *c, Py_ssize_t n, uint64_t h) {
    if (wc_cap == 0)
        return NULL;
    size_t mask = wc_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        WEntry *e = &wc_tab[i];
        if (e->h == 0)
            return NULL;
        if (e->h == h && e->len == n && memcmp(e->chars, c, sizeof(Py_UCS4) * (size_t)n) == 0)
            return e;
    }
}

/* OR of table[x] over the strings of a tuple (table: str -> int); 0 without a table; (uint64_t)-1 and an exception
 * on error */
static uint64_t class_bits(PyObject *table, PyObject *tup) {
    uint64_t bits = 0;
    if (table == NULL || PyDict_GET_SIZE(table) == 0)
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tup); i++) {
        PyObject *v = PyDict_GetItemWithError(table, PyTuple_GET_ITEM(tup, i));
        if (v == NULL) {
            if (PyErr_Occurred())
                return (uint64_t)-1;
            continue;
        }
        unsigned long long b = PyLong_AsUnsignedLongLong(v);
        if (b == (unsigned long long)-1 && PyErr_Occurred())
            return (uint64_t)-1;
        bits |= (uint64_t)b;
    }
    return bits;
}

/* bit q set when stem q of the tuple (q < 64) is in ``set`` (all set when ``set`` is NULL); (uint64_t)-1 and an
 * exception on error */
static uint64_t member_mask(PyObject *set, PyObject *tup) {
    if (set == NULL)
        return ~(uint64_t)0;
    uint64_t mask = 0;
    Py_ssize_t n = PyTuple_GET_SIZE(tup);
    for (Py_ssize_t q = 0; q < n && q < 64; q++) {
        int in = PySet_Contains(set, PyTuple_GET_ITEM(tup, q));
        if (in < 0)
            return (uint64_t)-1;
        if (in)
            mask |= (uint64_t)1 << q;
    }
    return mask;
}

/* mirror word -> parts (a new reference is taken), with the word classes of its tokens and stems and the masks of
 * its stems in the phrase index's firsts/seconds; -1 on error */
static int wc_put(const Py_UCS4 *c, Py_ssize_t n, uint64_t h, PyObject *parts) {
    uint64_t tb = class_bits(wc_tokbits, PyTuple_GET_ITEM(parts, 0));
    if (tb == (uint64_t)-1 && PyErr_Occurred())
        return -1;
    uint64_t sb = class_bits(wc_stembits, PyTuple_GET_ITEM(parts, 1));
    if (sb == (uint64_t)-1 && PyErr_Occurred())
        return -1;
    uint64_t fm = member_mask(wc_firsts, PyTuple_GET_ITEM(parts, 1));
    if (fm == (uint64_t)-1 && PyErr_Occurred())
        return -1;
    uint64_t sm = member_mask(wc_seconds, PyTuple_GET_ITEM(parts, 1));
    if (sm == (uint64_t)-1 && PyErr_Occurred())
        return -1;
    if (wc_used >= WC_MAX)
        wc_clear();
    if ((wc_used + 1) * 2 > wc_cap) { /* keep the table at most half full */
        size_t ncap = wc_cap ? wc_cap * 2 : 4096;
        WEntry *nt = PyMem_Calloc(ncap, sizeof(WEntry));
        if (nt == NULL)
            return -1;
        for (size_t i = 0; i < wc_cap; i++) {
            if (wc_tab[i].h) {
                size_t j = (size_t)wc_tab[i].h & (ncap - 1);
                while (nt[j].h)
                    j = (j + 1) & (ncap - 1);
                nt[j] = wc_tab[i];
            }
        }
        PyMem_Free(wc_tab);
        wc_tab = nt;
        wc_cap = ncap;
    }
    Py_UCS4 *copy = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(n ? n : 1));
    if (copy == NULL)
        return -1;
    memcpy(copy, c, sizeof(Py_UCS4) * (size_t)n);
    size_t mask = wc_cap - 1;
    size_t i = (size_t)h & mask;
    while (wc_tab[i].h)
        i = (i + 1) & mask;
    wc_tab[i].h = h;
    wc_tab[i].len = n;
    wc_tab[i].chars = copy;
    Py_INCREF(parts);
    wc_tab[i].parts = parts;
    wc_tab[i].bits = tb | sb;
    wc_tab[i].firsts = fm;
    wc_tab[i].seconds = sm;
    wc_used++;
    wc_last = i;
    return 0;
}

/* --- phrase scan (Knowledge.scan) ------------------------------------------------------------------ */

#define MAX_KINDS 64

typedef struct {
    PyObject *kind[MAX_KINDS]; /* borrowed */
    Py_ssize_t until[MAX_KINDS];
    int n;
    PyObject *overflow; /* a dict, once there are more kinds than slots */
} Busy;

static int kind_eq(PyObject *a, PyObject *b) {
    if (a == b)
        return 1;
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)) {
        Py_hash_t ha = ((PyASCIIObject *)a)->hash, hb = ((PyASCIIObject *)b)->hash;
        if (ha != -1 && hb != -1 && ha != hb) /* both hashes computed and different: different strings */
            return 0;
    }
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

/* busy.get(kind, 0); -1 on error */
static Py_ssize_t busy_get(Busy *b, PyObject *kind) {
    for (int k = 0; k < b->n; k++) {
        int eq = kind_eq(b->kind[k], kind);
        if (eq < 0)
            return -1;
        if (eq)
            return b->until[k];
    }
    if (b->overflow != NULL) {
        PyObject *v = PyDict_GetItemWithError(b->overflow, kind);
        if (v != NULL)
            return PyLong_AsSsize_t(v);
        if (PyErr_Occurred())
            return -1;
    }
    return 0;
}

static int busy_set(Busy *b, PyObject *kind, Py_ssize_t until) {
    for (int k = 0; k < b->n; k++) {
        int eq = kind_eq(b->kind[k], kind);
        if (eq < 0)
            return -1;
        if (eq) {
            b->until[k] = until;
            return 0;
        }
    }
    if (b->n < MAX_KINDS) {
        b->kind[b->n] = kind;
        b->until[b->n] = until;
        b->n++;
        return 0;
    }
    if (b->overflow == NULL && (b->overflow = PyDict_New()) == NULL)
        return -1;
    PyObject *v = PyLong_FromSsize_t(until);
    if (v == NULL)
        return -1;
    int r = PyDict_SetItem(b->overflow, kind, v);
    Py_DECREF(v);
    return r;
}

static int add_hit(PyObject *hits, Py_ssize_t s, Py_ssize_t e, PyObject *kind, PyObject *payload) {
    PyObject *t = PyTuple_New(4); /* (s, e, kind, payload), filled in place */
    if (t == NULL)
        return -1;
    PyObject *a = PyLong_FromSsize_t(s);
    if (a == NULL) {
        Py_DECREF(t);
        return -1;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyObject *z = PyLong_FromSsize_t(e);
    if (z == NULL) {
        Py_DECREF(t);
        return -1;
    }
    PyTuple_SET_ITEM(t, 1, z);
    Py_INCREF(kind);
    PyTuple_SET_ITEM(t, 2, kind);
    Py_INCREF(payload);
    PyTuple_SET_ITEM(t, 3, payload);
    int r = PyList_Append(hits, t);
    Py_DECREF(t);
    return r;
}

static PyObject *s_by_kind;

/* An empty hit list: a plain list, or (``hits_type`` given) an instance of analysis.Hits, a list subclass whose
 * ``by_kind`` slot set_by_kind fills once its hits are in. */
static PyObject *new_hits(PyTypeObject *hits_type) {
    if (hits_type == NULL)
        return PyList_New(0);
    return hits_type->tp_alloc(hits_type, 0); /* an empty list (no item array yet), slots NULL */
}

/* hits.by_kind = {kind: [its hits in order]}, the kinds in order of their first hit (what Hits.__init__ computes).
 * The kinds are grouped in a small array first (a sentence has a few; equal kinds are nearly always the same
 * object), then the dict is made with one insertion per kind (its first hit's kind object as the key, as before). */
#define BY_KIND_MAX 32
static int set_by_kind(PyObject *hits) {
    PyObject *kinds[BY_KIND_MAX]; /* borrowed: the first hit's kind of each group */
    PyObject *lists[BY_KIND_MAX]; /* owned */
    int nk = 0, overflow = 0;
    PyObject *by = NULL;
    Py_ssize_t n = PyList_GET_SIZE(hits);
    for (Py_ssize_t i = 0; i < n && !overflow; i++) {
        PyObject *h = PyList_GET_ITEM(hits, i);
        PyObject *kind = PyTuple_GET_ITEM(h, 2);
        int g = -1;
        for (int q = 0; q < nk; q++) {
            if (kinds[q] == kind) {
                g = q;
                break;
            }
        }
        if (g < 0) { /* not the same object: compare (rare), else a new group */
            for (int q = 0; q < nk && g < 0; q++) {
                int eq = kind_eq(kinds[q], kind);
                if (eq < 0)
                    goto fail;
                if (eq)
                    g = q;
            }
        }
        if (g < 0) {
            if (nk == BY_KIND_MAX) { /* (never seen: many kinds) the dict, as Hits.__init__ does */
                overflow = 1;
                break;
            }
            if ((lists[nk] = PyList_New(0)) == NULL)
                goto fail;
            kinds[nk] = kind;
            g = nk++;
        }
        if (PyList_Append(lists[g], h) < 0)
            goto fail;
    }
    by = PyDict_New();
    if (by == NULL)
        goto fail;
    if (overflow) { /* start over with the dict alone */
        for (int q = 0; q < nk; q++)
            Py_DECREF(lists[q]);
        nk = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *h = PyList_GET_ITEM(hits, i);
            PyObject *kind = PyTuple_GET_ITEM(h, 2);
            PyObject *lst = PyDict_GetItemWithError(by, kind);
            if (lst == NULL) {
                if (PyErr_Occurred() || (lst = PyList_New(0)) == NULL)
                    goto fail;
                int r = PyDict_SetItem(by, kind, lst);
                Py_DECREF(lst); /* the dict holds it */
                if (r < 0)
                    goto fail;
            }
            if (PyList_Append(lst, h) < 0)
                goto fail;
        }
    }
    for (int q = 0; q < nk; q++) {
        if (PyDict_SetItem(by, kinds[q], lists[q]) < 0)
            goto fail;
    }
    for (int q = 0; q < nk; q++)
        Py_DECREF(lists[q]);
    nk = 0;
    int r = PyObject_GenericSetAttr(hits, s_by_kind, by);
    Py_DECREF(by);
    return r;
fail:
    for (int q = 0; q < nk; q++)
        Py_DECREF(lists[q]);
    Py_XDECREF(by);
    return -1;
}

/* Knowledge.scan(stems) over the given index1 (stem -> [(kind, payload)]), index2 ((stem, stem) ->
 * [(phrase, kind, payload)], longest first) and firsts (the first stems of all phrases). */
#define IN_FIRSTS 1
#define IN_SECONDS 2

/* index2 as two levels, stem -> {next stem -> its entries} (the same entry lists), so that a lookup needs no pair
 * tuple (allocated, hashed, compared, freed); made once per index2 object (and again if its size changes: the
 * index is built once per Knowledge). NULL when index2 has a key that is not a pair: the pair lookups are used. */
static PyObject *i2_src = NULL, *i2_levels = NULL; /* strong */
static Py_ssize_t i2_size = -1;

/* the two-level form of index2 (borrowed, may be NULL); -1 on error */
static int index2_levels(PyObject *index2, PyObject **out) {
    if (index2 != i2_src || PyDict_GET_SIZE(index2) != i2_size) {
        PyObject *lv = PyDict_New();
        if (lv == NULL)
            return -1;
        Py_ssize_t pos = 0;
        PyObject *key, *val;
        while (lv != NULL && PyDict_Next(index2, &pos, &key, &val)) {
            if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != 2) {
                Py_CLEAR(lv); /* not all pairs: no levels */
                break;
            }
            PyObject *a = PyTuple_GET_ITEM(key, 0), *b = PyTuple_GET_ITEM(key, 1);
            PyObject *d = PyDict_GetItemWithError(lv, a);
            if (d == NULL) {
                if (PyErr_Occurred() || (d = PyDict_New()) == NULL) {
                    Py_DECREF(lv);
                    return -1;
                }
                int r = PyDict_SetItem(lv, a, d);
                Py_DECREF(d);
                if (r < 0) {
                    Py_DECREF(lv);
                    return -1;
                }
            }
            if (PyDict_SetItem(d, b, val) < 0) {
                Py_DECREF(lv);
                return -1;
            }
        }
        Py_INCREF(index2);
        Py_XSETREF(i2_src, index2);
        Py_XSETREF(i2_levels, lv);
        i2_size = PyDict_GET_SIZE(index2);
    }
    *out = i2_levels;
    return 0;
}

/* ``flags`` (optional): per stem, IN_FIRSTS / IN_SECONDS when it is in ``firsts`` / ``seconds`` (or there are no
 * seconds), as the word mirror knows them: no set lookups. */
static PyObject *scan_stems(PyObject *stems, PyObject *index1, PyObject *index2, PyObject *firsts,
                            PyTypeObject *hits_type, PyObject *seconds, const unsigned char *flags) {
    PyObject *levels; /* borrowed */
    if (index2_levels(index2, &levels) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(stems);
    PyObject *hits = new_hits(hits_type);
    if (hits == NULL)
        return NULL;
    Busy busy;
    busy.n = 0;
    busy.overflow = NULL;
    Py_ssize_t open_until = 0;
    PyObject *pair = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *st = PyList_GET_ITEM(stems, i);
        int in = flags ? (flags[i] & IN_FIRSTS) : PySet_Contains(firsts, st); /* no phrase starts with this stem:
                                                                                  neither index has an entry */
        if (in < 0)
            goto fail;
        if (!in)
            continue;
        PyObject *multi = NULL; /* borrowed */
        int second = i + 1 < n;
        if (second && flags) {
            second = (flags[i + 1] & IN_SECONDS) != 0;
        } else if (second && seconds != NULL) { /* no index2 key has this second stem: no lookup (and no pair) */
            second = PySet_Contains(seconds, PyList_GET_ITEM(stems, i + 1));
            if (second < 0)
                goto fail;
        }
        if (second && levels != NULL) {
            PyObject *d = PyDict_GetItemWithError(levels, st);
            if (d != NULL)
                multi = PyDict_GetItemWithError(d, PyList_GET_ITEM(stems, i + 1));
            if (multi == NULL && PyErr_Occurred())
                goto fail;
        } else if (second) {
            pair = PyTuple_Pack(2, st, PyList_GET_ITEM(stems, i + 1));
            if (pair == NULL)
                goto fail;
            multi = PyDict_GetItemWithError(index2, pair);
            Py_CLEAR(pair);
            if (multi == NULL && PyErr_Occurred())
                goto fail;
        }
        PyObject *single = PyDict_GetItemWithError(index1, st);
        if (single == NULL && PyErr_Occurred())
            goto fail;
        if (multi != NULL) {
            Py_INCREF(multi);
            Py_ssize_t nm = PySequence_Size(multi);
            for (Py_ssize_t q = 0; q < nm; q++) {
                PyObject *entry = PySequence_GetItem(multi, q);
                if (entry == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3) {
                    Py_XDECREF(entry);
                    Py_DECREF(multi);
                    if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_TypeError, "index2 entries must be (phrase, kind, payload)");
                    goto fail;
                }
                PyObject *ph = PyTuple_GET_ITEM(entry, 0), *kind = PyTuple_GET_ITEM(entry, 1),
                         *payload = PyTuple_GET_ITEM(entry, 2);
                Py_ssize_t m = PyTuple_Size(ph);
                Py_ssize_t b = busy_get(&busy, kind);
                if (m < 0 || (b < 0 && PyErr_Occurred())) {
                    Py_DECREF(entry);
                    Py_DECREF(multi);
                    goto fail;
                }
                if (b > i) {
                    Py_DECREF(entry);
                    continue;
                }
                int ok = (m == 2);
                if (!ok && i + m <= n) {
                    ok = 1;
                    for (Py_ssize_t k = 2; k < m; k++) {
                        int eq = kind_eq(PyList_GET_ITEM(stems, i + k), PyTuple_GET_ITEM(ph, k));
                        if (eq < 0) {
                            Py_DECREF(entry);
                            Py_DECREF(multi);
                            goto fail;
                        }
                        if (!eq) {
                            ok = 0;
                            break;
                        }
                    }
                }
                if (ok) {
                    if (add_hit(hits, i, i + m, kind, payload) < 0 || busy_set(&busy, kind, i + m) < 0) {
                        Py_DECREF(entry);
                        Py_DECREF(multi);
                        goto fail;
                    }
                    if (i + m > open_until)
                        open_until = i + m;
                }
                Py_DECREF(entry);
            }
            Py_DECREF(multi);
            if (nm < 0)
                goto fail;
        }
        if (single != NULL) {
            Py_INCREF(single);
            Py_ssize_t ns = PySequence_Size(single);
            for (Py_ssize_t q = 0; q < ns; q++) {
                PyObject *entry = PySequence_GetItem(single, q);
                if (entry == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
                    Py_XDECREF(entry);
                    Py_DECREF(single);
                    if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_TypeError, "index1 entries must be (kind, payload)");
                    goto fail;
                }
                PyObject *kind = PyTuple_GET_ITEM(entry, 0), *payload = PyTuple_GET_ITEM(entry, 1);
                int take = 1;
                if (i < open_until) {
                    Py_ssize_t b = busy_get(&busy, kind);
                    if (b < 0 && PyErr_Occurred()) {
                        Py_DECREF(entry);
                        Py_DECREF(single);
                        goto fail;
                    }
                    take = b <= i;
                }
                if (take && add_hit(hits, i, i + 1, kind, payload) < 0) {
                    Py_DECREF(entry);
                    Py_DECREF(single);
                    goto fail;
                }
                Py_DECREF(entry);
            }
            Py_DECREF(single);
            if (ns < 0)
                goto fail;
        }
    }
    Py_XDECREF(busy.overflow);
    if (hits_type != NULL && set_by_kind(hits) < 0) {
        Py_DECREF(hits);
        return NULL;
    }
    return hits;
fail:
    Py_XDECREF(pair);
    Py_XDECREF(busy.overflow);
    Py_DECREF(hits);
    return NULL;
}

static PyObject *fast_scan(PyObject *self, PyObject *args) {
    PyObject *stems, *index1, *index2, *firsts;
    if (!PyArg_ParseTuple(args, "O!O!O!O:scan", &PyList_Type, &stems, &PyDict_Type, &index1, &PyDict_Type, &index2,
                          &firsts))
        return NULL;
    if (!PyAnySet_Check(firsts)) {
        PyErr_SetString(PyExc_TypeError, "firsts must be a set or frozenset");
        return NULL;
    }
    return scan_stems(stems, index1, index2, firsts, NULL, NULL, NULL);
}

/* --- sentences ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject *toks, *stems; /* borrowed: the sentence's own lists (it holds them) */
    Py_ssize_t len;         /* len(sentence.text) */
    unsigned char *flags;   /* owned: per stem, IN_FIRSTS / IN_SECONDS (scan_stems) */
} SentInfo;

typedef struct {
    PyObject *word_parts; /* Vocab._word_parts memo: raw word -> (tokens, stems) */
    PyObject *sentence;   /* the Sentence class */
    SentInfo *info;       /* per sentence made so far, in order: what the junk marking and the scan read */
    Py_ssize_t ninfo, capinfo;
    uint64_t *masks;      /* scratch, two per word of a sentence: its entry's firsts and seconds masks */
    Py_ssize_t capmasks;  /* words */
} Ctx;

static PyObject *s_index, *s_text, *s_toks, *s_stems, *s_words, *s_space, *s_bits;

/* Sentence(index, text, toks, stems): allocated and its slots set directly (what Sentence.__init__ does with
 * toks given and no words), without running the Python __init__; its ``bits`` too when word classes are given. */
static PyObject *new_sentence(Ctx *cx, Py_ssize_t index, PyObject *text, PyObject *toks, PyObject *stems,
                              uint64_t bits) {
    PyTypeObject *tp = (PyTypeObject *)cx->sentence;
    PyObject *obj = tp->tp_alloc(tp, 0);
    if (obj == NULL)
        return NULL;
    PyObject *idx = PyLong_FromSsize_t(index);
    if (idx == NULL || PyObject_GenericSetAttr(obj, s_index, idx) < 0 || PyObject_GenericSetAttr(obj, s_text, text) < 0
        || PyObject_GenericSetAttr(obj, s_stems, stems) < 0 || PyObject_GenericSetAttr(obj, s_words, Py_None) < 0
        || PyObject_GenericSetAttr(obj, s_toks, toks) < 0) {
        Py_XDECREF(idx);
        Py_DECREF(obj);
        return NULL;
    }
    Py_DECREF(idx);
    if (wc_tokbits != NULL) {
        PyObject *b = PyLong_FromUnsignedLongLong((unsigned long long)bits);
        int r = b == NULL ? -1 : PyObject_GenericSetAttr(obj, s_bits, b);
        Py_XDECREF(b);
        if (r < 0) {
            Py_DECREF(obj);
            return NULL;
        }
    }
    return obj;
}

/* Append the sentences of ``text`` (normalize.analyse without the presentation-form path) to ``out``; each
 * sentence's index is ``base`` + its position. */
static int analyse_text(Ctx *cx, PyObject *text, PyObject *out, Py_ssize_t base, PyObject ***held, Py_ssize_t *cap) {
    Py_ssize_t L = PyUnicode_GET_LENGTH(text);
    if (L == 0)
        return 0;
    Py_UCS4 *buf = PyUnicode_AsUCS4Copy(text);
    if (buf == NULL)
        return -1;
    Py_ssize_t pos = 0;
    while (pos < L) {
        if (is_break_t(buf[pos])) {
            pos++;
            continue;
        }
        Py_ssize_t start = pos;
        while (pos < L && !is_break_t(buf[pos]))
            pos++;
        while (pos < L && is_end(buf[pos]))
            pos++;
        /* s.strip(_STRIP); dropped when s.strip(_STRIP + ".") is empty */
        Py_ssize_t a = start, b = pos;
        while (a < b && is_strip(buf[a]))
            a++;
        while (b > a && is_strip(buf[b - 1]))
            b--;
        int real = 0;
        for (Py_ssize_t k = a; k < b; k++) {
            if (!is_strip(buf[k]) && buf[k] != '.') {
                real = 1;
                break;
            }
        }
        if (!real)
            continue;
        /* words: str.split() of the sentence; tokens and stems from the word memo (each value held in ``held``) */
        Py_ssize_t nheld = 0, ntok = 0;
        uint64_t sbits = 0;
        Py_ssize_t k = a;
        int err = 0;
        while (k < b) {
            while (k < b && is_space_t(buf[k]))
                k++;
            if (k >= b)
                break;
            Py_ssize_t ws = k;
            uint64_t wh = 1469598103934665603ULL; /* wc_hash(buf + ws, k - ws), as the word is read */
            while (k < b && !is_space_t(buf[k])) {
                wh ^= (uint64_t)buf[k];
                wh *= 1099511628211ULL;
                k++;
            }
            wh = wh ? wh : 1;
            WEntry *we = wc_get(buf + ws, k - ws, wh);
            PyObject *parts;
            if (we != NULL) {
                parts = we->parts;
                Py_INCREF(parts);
            } else {
                PyObject *word = PyUnicode_Substring(text, ws, k);
                parts = word ? memo_get(cx->word_parts, word) : NULL;
                Py_XDECREF(word);
                if (parts == NULL) {
                    err = 1;
                    break;
                }
                if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(parts, 0))
                    || !PyTuple_Check(PyTuple_GET_ITEM(parts, 1))
                    || PyTuple_GET_SIZE(PyTuple_GET_ITEM(parts, 0)) != PyTuple_GET_SIZE(PyTuple_GET_ITEM(parts, 1))) {
                    Py_DECREF(parts);
                    PyErr_SetString(PyExc_TypeError, "word memo values must be (tokens, stems) of equal length");
                    err = 1;
                    break;
                }
                /* the lookup may have run Python code that cleared the memo */
                if (wc_bind(cx->word_parts, 0) < 0 || wc_put(buf + ws, k - ws, wh, parts) < 0) {
                    Py_DECREF(parts);
                    if (!PyErr_Occurred())
                        PyErr_NoMemory();
                    err = 1;
                    break;
                }
                we = &wc_tab[wc_last];
            }
            sbits |= we->bits;
            if (nheld == cx->capmasks) {
                Py_ssize_t nc = cx->capmasks ? cx->capmasks * 2 : 64;
                uint64_t *nm = PyMem_Realloc(cx->masks, sizeof(uint64_t) * 2 * (size_t)nc);
                if (nm == NULL) {
                    Py_DECREF(parts);
                    PyErr_NoMemory();
                    err = 1;
                    break;
                }
                cx->masks = nm;
                cx->capmasks = nc;
            }
            cx->masks[2 * nheld] = we->firsts;
            cx->masks[2 * nheld + 1] = we->seconds;
            if (nheld == *cap) {
                PyObject **nw = PyMem_Realloc(*held, sizeof(PyObject *) * (*cap * 2));
                if (nw == NULL) {
                    Py_DECREF(parts);
                    PyErr_NoMemory();
                    err = 1;
                    break;
                }
                *held = nw;
                *cap *= 2;
            }
            (*held)[nheld++] = parts;
            ntok += PyTuple_GET_SIZE(PyTuple_GET_ITEM(parts, 0));
        }
        PyObject *stems = NULL, *toks = NULL;
        unsigned char *flags = NULL;
        if (!err && ntok > 0) { /* no tokens: no sentence */
            stems = PyList_New(ntok);
            toks = PyList_New(ntok);
            flags = PyMem_Malloc((size_t)ntok);
            if (stems == NULL || toks == NULL || flags == NULL) {
                if (flags == NULL)
                    PyErr_NoMemory();
                err = 1;
            } else {
                Py_ssize_t j = 0;
                for (Py_ssize_t w = 0; w < nheld && !err; w++) {
                    PyObject *tt = PyTuple_GET_ITEM((*held)[w], 0), *ss = PyTuple_GET_ITEM((*held)[w], 1);
                    uint64_t fm = cx->masks[2 * w], sm = cx->masks[2 * w + 1];
                    for (Py_ssize_t q = 0; q < PyTuple_GET_SIZE(tt); q++, j++) {
                        PyObject *x = PyTuple_GET_ITEM(tt, q), *y = PyTuple_GET_ITEM(ss, q);
                        Py_INCREF(x);
                        Py_INCREF(y);
                        PyList_SET_ITEM(toks, j, x);
                        PyList_SET_ITEM(stems, j, y);
                        int f, sc;
                        if (q < 64) {
                            f = (int)((fm >> q) & 1);
                            sc = (int)((sm >> q) & 1);
                        } else { /* (a word of more than 64 tokens: looked up) */
                            f = PySet_Contains(wc_firsts, y);
                            sc = wc_seconds == NULL ? 1 : PySet_Contains(wc_seconds, y);
                            if (f < 0 || sc < 0) {
                                err = 1;
                                break;
                            }
                        }
                        flags[j] = (unsigned char)((f ? IN_FIRSTS : 0) | (sc ? IN_SECONDS : 0));
                    }
                }
            }
        }
        for (Py_ssize_t w = 0; w < nheld; w++)
            Py_DECREF((*held)[w]);
        if (err) {
            Py_XDECREF(stems);
            Py_XDECREF(toks);
            PyMem_Free(flags);
            goto fail;
        }
        if (ntok == 0) {
            PyMem_Free(flags);
            continue;
        }
        if (ntok == 0)
            continue;
        {
            PyObject *s = PyUnicode_Substring(text, a, b);
            PyObject *sent = s ? new_sentence(cx, base + PyList_GET_SIZE(out), s, toks, stems, sbits) : NULL;
            Py_XDECREF(s);
            if (sent != NULL && cx->ninfo == cx->capinfo) {
                Py_ssize_t nc = cx->capinfo ? cx->capinfo * 2 : 64;
                SentInfo *ni = PyMem_Realloc(cx->info, sizeof(SentInfo) * nc);
                if (ni == NULL) {
                    Py_CLEAR(sent);
                    PyErr_NoMemory();
                } else {
                    cx->info = ni;
                    cx->capinfo = nc;
                }
            }
            if (sent != NULL) {
                SentInfo *si = &cx->info[cx->ninfo++];
                si->toks = toks;
                si->stems = stems;
                si->len = b - a;
                si->flags = flags;
                flags = NULL;
            }
            PyMem_Free(flags); /* (not kept: no sentence) */
            Py_DECREF(stems);
            Py_DECREF(toks);
            if (sent == NULL)
                goto fail;
            int r = PyList_Append(out, sent);
            Py_DECREF(sent);
            if (r < 0)
                goto fail;
        }
    }
    PyMem_Free(buf);
    return 0;
fail:
    PyMem_Free(buf);
    return -1;
}

/* The junk markers by first character: ``any(m in s for m in markers)`` in one pass over ``s`` (instead of one
 * substring search per marker), for up to 32 str markers; other marker tuples take the plain searches. */
typedef struct {
    uint32_t first[256]; /* bit q: marker q begins with a character of this low byte */
    int ok, any_empty;
} MarkerTab;

static void marker_tab(MarkerTab *t, PyObject *markers) {
    memset(t, 0, sizeof(*t));
    Py_ssize_t nm = PyTuple_GET_SIZE(markers);
    t->ok = nm <= 32;
    for (Py_ssize_t q = 0; q < nm && t->ok; q++) {
        PyObject *m = PyTuple_GET_ITEM(markers, q);
        if (!PyUnicode_Check(m) || PyUnicode_READY(m) < 0) {
            PyErr_Clear();
            t->ok = 0;
        } else if (PyUnicode_GET_LENGTH(m) == 0) {
            t->any_empty = 1;
        } else {
            t->first[PyUnicode_READ_CHAR(m, 0) & 0xFF] |= (uint32_t)1 << q;
        }
    }
}

/* 1 when some marker occurs in ``s`` (a str), 0 if none, -1 on error */
static int contains_any(PyObject *s, PyObject *markers, const MarkerTab *t) {
    if (!t->ok) {
        for (Py_ssize_t q = 0; q < PyTuple_GET_SIZE(markers); q++) {
            int found = PyUnicode_Contains(s, PyTuple_GET_ITEM(markers, q));
            if (found != 0)
                return found;
        }
        return 0;
    }
    if (t->any_empty)
        return 1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t mask = t->first[PyUnicode_READ(kind, data, i) & 0xFF];
        while (mask) {
            int q = __builtin_ctz(mask);
            mask &= mask - 1;
            PyObject *m = PyTuple_GET_ITEM(markers, q);
            Py_ssize_t ml = PyUnicode_GET_LENGTH(m);
            if (ml > n - i)
                continue;
            int mk = PyUnicode_KIND(m);
            const void *md = PyUnicode_DATA(m);
            Py_ssize_t k = 0;
            while (k < ml && PyUnicode_READ(mk, md, k) == PyUnicode_READ(kind, data, i + k))
                k++;
            if (k == ml)
                return 1;
        }
    }
    return 0;
}

static void free_info(Ctx *cx) {
    for (Py_ssize_t i = 0; i < cx->ninfo; i++)
        PyMem_Free(cx->info[i].flags);
    PyMem_Free(cx->info);
    PyMem_Free(cx->masks);
}

static int has_presentation(PyObject *text) {
    if (PyUnicode_MAX_CHAR_VALUE(text) < 0xFB50)
        return 0;
    Py_ssize_t L = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (kind == PyUnicode_2BYTE_KIND) { /* (Arabic text: one plain loop the compiler can vectorise) */
        const Py_UCS2 *d = data;
        int any = 0;
        for (Py_ssize_t i = 0; i < L; i++)
            any |= d[i] >= 0xFB50 && d[i] <= 0xFEFE;
        return any;
    }
    for (Py_ssize_t i = 0; i < L; i++) {
        if (is_presentation(PyUnicode_READ(kind, data, i)))
            return 1;
    }
    return 0;
}

/* analyse_doc(title, body, word_parts, index1, index2, firsts, junk_markers, junk_line, end_word, Sentence)
 * -> (sentences, hits, n_title) | None (presentation forms: use the Python path) */
static PyObject *fast_analyse_doc(PyObject *self, PyObject *args) {
    PyObject *title, *body, *index1, *index2, *firsts, *markers, *end_word;
    Py_ssize_t junk_line;
    Ctx cx;
    PyTypeObject *hits_type = NULL;
    PyObject *seconds = NULL, *tokbits = NULL, *stembits = NULL;
    Py_ssize_t nclasses = -1;
    if (!PyArg_ParseTuple(args, "UUO!O!O!OO!nUO!|O!OO!O!n:analyse_doc", &title, &body, &PyDict_Type, &cx.word_parts,
                          &PyDict_Type, &index1, &PyDict_Type, &index2, &firsts, &PyTuple_Type, &markers, &junk_line,
                          &end_word, &PyType_Type, &cx.sentence, &PyType_Type, &hits_type, &seconds, &PyDict_Type,
                          &tokbits, &PyDict_Type, &stembits, &nclasses))
        return NULL;
    if (seconds != NULL && !PyAnySet_Check(seconds)) {
        PyErr_SetString(PyExc_TypeError, "seconds must be a set or frozenset");
        return NULL;
    }
    if (hits_type != NULL && !PyType_IsSubtype(hits_type, &PyList_Type)) {
        PyErr_SetString(PyExc_TypeError, "Hits must be a list subclass");
        return NULL;
    }
    if (!PyAnySet_Check(firsts)) {
        PyErr_SetString(PyExc_TypeError, "firsts must be a set or frozenset");
        return NULL;
    }
    if ((tokbits == NULL) != (stembits == NULL)) {
        PyErr_SetString(PyExc_TypeError, "analyse_doc: token and stem class tables go together");
        return NULL;
    }
    Py_ssize_t nfirsts = PySet_GET_SIZE(firsts), nseconds = seconds == NULL ? -1 : PySet_GET_SIZE(seconds);
    if (tokbits != wc_tokbits || stembits != wc_stembits || nclasses != wc_nclasses || firsts != wc_firsts
        || seconds != wc_seconds || nfirsts != wc_nfirsts || nseconds != wc_nseconds) {
        wc_clear(); /* the mirrored bits were computed from other tables */
        Py_XINCREF(tokbits);
        Py_XSETREF(wc_tokbits, tokbits);
        Py_XINCREF(stembits);
        Py_XSETREF(wc_stembits, stembits);
        wc_nclasses = nclasses;
        Py_INCREF(firsts);
        Py_XSETREF(wc_firsts, firsts);
        Py_XINCREF(seconds);
        Py_XSETREF(wc_seconds, seconds);
        wc_nfirsts = nfirsts;
        wc_nseconds = nseconds;
    }
    if (has_presentation(title) || has_presentation(body))
        Py_RETURN_NONE;
    cx.info = NULL;
    cx.ninfo = cx.capinfo = 0;
    cx.masks = NULL;
    cx.capmasks = 0;
    if (wc_bind(cx.word_parts, 1) < 0)
        return NULL;
    PyObject *sents = PyList_New(0);
    PyObject *hits = NULL;
    if (sents == NULL)
        return NULL;
    Py_ssize_t cap = 64;
    PyObject **held = PyMem_Malloc(sizeof(PyObject *) * cap); /* scratch: the memo values of one sentence */
    if (held == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    int rt = analyse_text(&cx, title, sents, 0, &held, &cap);
    Py_ssize_t n_title = PyList_GET_SIZE(sents);
    if (rt == 0) {
        PyObject *bs = PyList_New(0);
        rt = bs == NULL ? -1 : analyse_text(&cx, body, bs, n_title, &held, &cap);
        if (rt == 0)
            rt = PyList_SetSlice(sents, n_title, n_title, bs);
        Py_XDECREF(bs);
    }
    PyMem_Free(held);
    if (rt < 0)
        goto fail;
    Py_ssize_t n = PyList_GET_SIZE(sents);
    hits = PyList_New(n);
    if (hits == NULL)
        goto fail;
    if (cx.ninfo != n) {
        PyErr_SetString(PyExc_SystemError, "analyse_doc: sentence bookkeeping out of step");
        goto fail;
    }
    int in_junk = 0;
    MarkerTab mtab;
    marker_tab(&mtab, markers);
    for (Py_ssize_t i = 0; i < n; i++) {
        SentInfo *si = &cx.info[i];
        int junk = 0;
        if (i >= n_title) { /* analysis._junk_flags over the body sentences */
            PyObject *toks = si->toks;
            Py_ssize_t tl = si->len;
            int decided = 0;
            if (tl < junk_line) {
                PyObject *head = PyList_GetSlice(toks, 0, 6);
                PyObject *joined = head ? PyUnicode_Join(s_space, head) : NULL;
                Py_XDECREF(head);
                if (joined == NULL)
                    goto fail;
                int found = contains_any(joined, markers, &mtab);
                Py_DECREF(joined);
                if (found < 0)
                    goto fail;
                if (found) {
                    int has_end = PySequence_Contains(toks, end_word);
                    if (has_end < 0)
                        goto fail;
                    in_junk = !has_end;
                    junk = 1;
                    decided = 1;
                }
            }
            if (!decided && in_junk) {
                int has_end = PySequence_Contains(toks, end_word);
                if (has_end < 0)
                    goto fail;
                if (has_end) {
                    junk = 1;
                    in_junk = 0;
                    decided = 1;
                } else if (tl >= junk_line) {
                    in_junk = 0;
                }
            }
            if (!decided)
                junk = in_junk;
        }
        PyObject *h;
        if (junk) {
            h = new_hits(hits_type);
            if (h != NULL && hits_type != NULL && set_by_kind(h) < 0)
                Py_CLEAR(h);
        } else {
            h = scan_stems(si->stems, index1, index2, firsts, hits_type, seconds, si->flags);
        }
        if (h == NULL)
            goto fail;
        PyList_SET_ITEM(hits, i, h);
    }
    free_info(&cx);
    PyObject *res = Py_BuildValue("(NNn)", sents, hits, n_title);
    return res;
fail:
    free_info(&cx);
    Py_DECREF(sents);
    Py_XDECREF(hits);
    return NULL;
}

/* --- word layout of a sentence (normalize.TokenChars) ------------------------------------------------------- */

/* word_layout(text, memo) -> (words, ends, starts): text.split(); the running totals of len(memo[word]) (each
 * word's token count: the memo maps a raw word to one entry per token; a missing word goes through the memo's
 * __missing__); and where each word starts in text (what the pattern r"\s*(?:\S+\s+){j}" matched at 0 ends at). */
static PyObject *fast_word_layout(PyObject *self, PyObject *args) {
    PyObject *text, *memo;
    if (!PyArg_ParseTuple(args, "UO!:word_layout", &text, &PyDict_Type, &memo))
        return NULL;
    Py_ssize_t L = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *words = PyList_New(0), *ends = PyList_New(0), *starts = PyList_New(0);
    if (words == NULL || ends == NULL || starts == NULL)
        goto fail;
    Py_ssize_t total = 0, k = 0;
    while (k < L) {
        while (k < L && is_space_t(PyUnicode_READ(kind, data, k)))
            k++;
        if (k >= L)
            break;
        Py_ssize_t ws = k;
        while (k < L && !is_space_t(PyUnicode_READ(kind, data, k)))
            k++;
        PyObject *w = PyUnicode_Substring(text, ws, k);
        if (w == NULL)
            goto fail;
        PyObject *v = memo_get(memo, w);
        int r = v == NULL ? -1 : PyList_Append(words, w);
        Py_DECREF(w);
        if (r < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_ssize_t n = PyObject_Length(v);
        Py_DECREF(v);
        if (n < 0)
            goto fail;
        total += n;
        PyObject *e = PyLong_FromSsize_t(total), *st = PyLong_FromSsize_t(ws);
        r = (e == NULL || st == NULL) ? -1 : (PyList_Append(ends, e) < 0 || PyList_Append(starts, st) < 0) ? -1 : 0;
        Py_XDECREF(e);
        Py_XDECREF(st);
        if (r < 0)
            goto fail;
    }
    return Py_BuildValue("(NNN)", words, ends, starts);
fail:
    Py_XDECREF(words);
    Py_XDECREF(ends);
    Py_XDECREF(starts);
    return NULL;
}

/* --- per-kind views of a sentence's hits (analysis.of_kind / of_kinds) ----------------------------------------- */

/* The visit rules read a sentence's hits one kind at a time, ~90 times an article; as Python functions the calls
 * were 8 % of the bytecode. These are the same functions for an analysis.Hits (its by_kind slot read directly);
 * anything else (a plain list, a subclass, a Hits whose slot is unset) goes to the Python functions given. */
static PyTypeObject *hv_type = NULL;   /* analysis.Hits (strong) */
static Py_ssize_t hv_offset = -1;      /* offset of its by_kind slot */
static PyObject *hv_empty = NULL;      /* analysis._NO_HITS (strong) */
static PyObject *hv_kind_py = NULL;    /* the Python of_kind (strong) */
static PyObject *hv_kinds_py = NULL;   /* the Python of_kinds (strong) */

static PyObject *hv_unbound(PyObject *py, PyObject *const *args, Py_ssize_t nargs) {
    if (py == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "of_kind/of_kinds: call hit_views first");
        return NULL;
    }
    return PyObject_Vectorcall(py, args, nargs, NULL);
}

/* the by_kind dict of an exact Hits, else NULL (no exception set) */
static inline PyObject *hv_by_kind(PyObject *hits) {
    if (Py_TYPE(hits) != hv_type)
        return NULL;
    PyObject *by = *(PyObject **)((char *)hits + hv_offset);
    return (by != NULL && PyDict_CheckExact(by)) ? by : NULL;
}

static PyObject *fast_of_kind(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || hv_type == NULL)
        return hv_unbound(hv_kind_py, args, nargs);
    PyObject *by = hv_by_kind(args[0]);
    if (by == NULL)
        return PyObject_Vectorcall(hv_kind_py, args, nargs, NULL);
    PyObject *v = PyDict_GetItemWithError(by, args[1]);
    if (v == NULL) {
        if (PyErr_Occurred())
            return NULL;
        v = hv_empty;
    }
    Py_INCREF(v);
    return v;
}

static PyObject *fast_of_kinds(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || hv_type == NULL)
        return hv_unbound(hv_kinds_py, args, nargs);
    PyObject *hits = args[0];
    PyObject *by = hv_by_kind(hits);
    if (by == NULL)
        return PyObject_Vectorcall(hv_kinds_py, args, nargs, NULL);
    PyObject *one = hv_empty; /* borrowed */
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyObject *v = PyDict_GetItemWithError(by, args[i]);
        if (v == NULL) {
            if (PyErr_Occurred())
                return NULL;
            continue;
        }
        int t = PyObject_IsTrue(one);
        if (t < 0)
            return NULL;
        if (t) {
            Py_INCREF(hits);
            return hits;
        }
        one = v;
    }
    Py_INCREF(one);
    return one;
}

static PyObject *fast_hit_views(PyObject *self, PyObject *args) {
    PyObject *type, *empty, *kind_py, *kinds_py;
    if (!PyArg_ParseTuple(args, "O!OOO:hit_views", &PyType_Type, &type, &empty, &kind_py, &kinds_py))
        return NULL;
    PyObject *descr = PyDict_GetItemWithError(((PyTypeObject *)type)->tp_dict, s_by_kind);
    if (descr == NULL || !PyObject_TypeCheck(descr, &PyMemberDescr_Type)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "hit_views: the Hits type has no by_kind slot");
        return NULL;
    }
    PyMemberDef *md = ((PyMemberDescrObject *)descr)->d_member;
    if (md->type != T_OBJECT_EX) {
        PyErr_SetString(PyExc_TypeError, "hit_views: by_kind is not an object slot");
        return NULL;
    }
    Py_INCREF(type);
    Py_INCREF(empty);
    Py_INCREF(kind_py);
    Py_INCREF(kinds_py);
    Py_XSETREF(hv_type, (PyTypeObject *)type);
    Py_XSETREF(hv_empty, empty);
    Py_XSETREF(hv_kind_py, kind_py);
    Py_XSETREF(hv_kinds_py, kinds_py);
    hv_offset = md->offset;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"analyse_doc", fast_analyse_doc, METH_VARARGS,
     "analyse_doc(title, body, word_parts, index1, index2, firsts, junk_markers, junk_line, end_word, Sentence[, Hits"
     "[, seconds[, token_bits, stem_bits, n_classes]]]) -> (sentences, hits, n_title), or None for text with presentation forms; each sentence's hits are "
     "a Hits with its by_kind index when the Hits class is given, else a list; seconds (the second stems of the "
     "index2 keys) spares the index2 lookups that cannot hit; token_bits/stem_bits (normalize.TOKEN_BITS, STEM_BITS: "
     "word -> class bits) give each sentence its ``bits``."},
    {"scan", fast_scan, METH_VARARGS, "scan(stems, index1, index2, firsts) -> hits, as Knowledge.scan."},
    {"hit_views", fast_hit_views, METH_VARARGS,
     "hit_views(Hits, no_hits, of_kind, of_kinds) -> None: makes this module's of_kind and of_kinds those of "
     "processors.analysis, in C for exact Hits (the by_kind slot read directly); other arguments are passed to the Python functions given."},
    {"of_kind", (PyCFunction)(void (*)(void))fast_of_kind, METH_FASTCALL, "analysis.of_kind (after hit_views)."},
    {"word_layout", fast_word_layout, METH_VARARGS,
     "word_layout(text, memo) -> (text.split(), running totals of len(memo[word]), each word's start in text)."},
    {"of_kinds", (PyCFunction)(void (*)(void))fast_of_kinds, METH_FASTCALL, "analysis.of_kinds (after hit_views)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "processors._fast",
                                    "C accelerator for processors.analysis (optional).", -1, methods};

PyMODINIT_FUNC PyInit__fast(void) {
    cclass_init();
    s_index = PyUnicode_InternFromString("index");
    s_text = PyUnicode_InternFromString("text");
    s_toks = PyUnicode_InternFromString("toks");
    s_stems = PyUnicode_InternFromString("stems");
    s_words = PyUnicode_InternFromString("_words");
    s_space = PyUnicode_InternFromString(" ");
    s_bits = PyUnicode_InternFromString("bits");
    s_by_kind = PyUnicode_InternFromString("by_kind");
    if (!s_by_kind || !s_index || !s_text || !s_toks || !s_stems || !s_words || !s_space || !s_bits)
        return NULL;
    return PyModule_Create(&module);
}
