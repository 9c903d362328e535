/* The state tree's update (ledger/state_root.py) in C: the same walk over
 * the node cache of node_cache.c.
 *
 * Why: an attest block rewrites about a thousand tree nodes, and in Python
 * each node visit costs a recursive call, a bisection and a hashlib object
 * (fourteenth session: the tree was 22-24 % of a validator's Python time).
 * This module walks the tree with C recursion, bisects on path bits and
 * hashes with OpenSSL's SHA-256. It reads nodes as C structs straight out of
 * the cache's table (or through the tree's own load on a miss), and returns
 * the nodes it writes as the Python objects the rest of the tree uses:
 * ``None``, 32 hash bytes, or a ``Leaf``. ``SparseMerkleTree._update`` and
 * ``_build`` remain the specification; tests/property/test_state_root_native.py
 * checks that both give the same root, writes and replaced leaves.
 *
 * The one reusable digest context below needs no lock: it is used only
 * inside sha256(), which never calls into Python or releases the GIL (a cache
 * miss calls back into Python, which may release it, but never mid-hash).
 */
#include "node_cache.h"

#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BYTES NODE_HASH_BYTES
#define PATH_BITS 256
/* Interior nodes have records only at depths that are multiples of this
 * (state_root.INTERIOR_RECORD_DEPTHS; the module exports it and Python
 * refuses a build that disagrees). */
#define INTERIOR_RECORD_DEPTHS 4
#define UNSTORED_DEPTH_BITS (INTERIOR_RECORD_DEPTHS - 1)

typedef struct {
    uint8_t path[HASH_BYTES];
    uint8_t digest[HASH_BYTES];
    int has_value; /* 0: the change deletes the key */
} item_t;

typedef struct {
    node_cache_t *cache; /* borrowed */
    PyObject *load;      /* callable(position) -> node, fills the cache (borrowed) */
    PyObject *writes;    /* dict: position -> node or None (owned) */
    PyObject *replaced;  /* list of unstored-depth positions whose leaf record goes (owned) */
    PyObject *empties;   /* list of empty children of the subtrees it built (owned) */
    item_t *items;
    Py_ssize_t count;
    item_t *scratch; /* count + 1 entries: a leaf case's merged changes */
} walk_t;

static EVP_MD_CTX *digest_ctx = NULL;
static EVP_MD *sha256_md = NULL;
static const uint8_t EMPTY[HASH_BYTES] = {0};

static int sha256(const uint8_t *data, size_t length, uint8_t out[HASH_BYTES]) {
    if (EVP_DigestInit_ex(digest_ctx, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(digest_ctx, data, length) != 1 ||
        EVP_DigestFinal_ex(digest_ctx, out, NULL) != 1) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
        return -1;
    }
    return 0;
}

/* node(left, right) = SHA-256(0x01 || left || right), as a new bytes object. */
static PyObject *node_hash(const uint8_t left[HASH_BYTES], const uint8_t right[HASH_BYTES]) {
    uint8_t buffer[1 + 2 * HASH_BYTES];
    uint8_t out[HASH_BYTES];
    buffer[0] = 0x01;
    memcpy(buffer + 1, left, HASH_BYTES);
    memcpy(buffer + 1 + HASH_BYTES, right, HASH_BYTES);
    if (sha256(buffer, sizeof buffer, out) < 0) return NULL;
    return PyBytes_FromStringAndSize((const char *)out, HASH_BYTES);
}

static inline int bit_at(const uint8_t *path, int depth) {
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1;
}

/* The first index in [lo, hi) whose path has bit `depth` set: the changes share
 * their first `depth` bits and are sorted, so that is a bisection. */
static Py_ssize_t split_at(const item_t *items, Py_ssize_t lo, Py_ssize_t hi, int depth) {
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (bit_at(items[mid].path, depth)) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* The position of a child: pos << 1 | bit, in a uint64 while it fits. */
static PyObject *child_position(PyObject *pos, uint64_t small, int child_depth, int bit) {
    if (child_depth <= tree_small_depth) return PyLong_FromUnsignedLongLong((small << 1) | (uint64_t)bit);
    PyObject *one = PyLong_FromLong(1);
    if (one == NULL) return NULL;
    PyObject *shifted = PyNumber_Lshift(pos, one);
    Py_DECREF(one);
    if (shifted == NULL || !bit) return shifted;
    PyObject *bit_obj = PyLong_FromLong(bit);
    if (bit_obj == NULL) {
        Py_DECREF(shifted);
        return NULL;
    }
    PyObject *child = PyNumber_Or(shifted, bit_obj);
    Py_DECREF(shifted);
    Py_DECREF(bit_obj);
    return child;
}

/* The node at `pos` (`small` while depth fits a uint64), copied out of the
 * cache, or from the tree's own load, which caches it: the walk then holds no
 * pointer into a table that a load may grow or evict. */
static int node_at(walk_t *walk, PyObject *pos, uint64_t small, int depth, tree_node_t *out) {
    int found = node_cache_find(walk->cache, pos, small, depth, out);
    if (found != 0) return found < 0 ? -1 : 0;
    PyObject *object = PyObject_CallOneArg(walk->load, pos);
    if (object == NULL) return -1;
    int status = tree_node_from_object(object, out);
    Py_DECREF(object);
    return status;
}

/* leaf(path, value) = SHA-256(0x00 || path || value_hash), as a new Leaf. */
static PyObject *new_leaf(const item_t *item) {
    uint8_t buffer[1 + 2 * HASH_BYTES];
    uint8_t hash[HASH_BYTES];
    buffer[0] = 0x00;
    memcpy(buffer + 1, item->path, HASH_BYTES);
    memcpy(buffer + 1 + HASH_BYTES, item->digest, HASH_BYTES);
    if (sha256(buffer, sizeof buffer, hash) < 0) return NULL;
    return tree_make_leaf(item->path, item->digest, hash);
}

/* subtree_hash of a node object the walk made. */
static int made_hash(PyObject *node, uint8_t out[HASH_BYTES]) {
    tree_node_t decoded;
    if (tree_node_hash_from_object(node, &decoded) < 0) return -1;
    memcpy(out, decoded.hash, HASH_BYTES);
    return 0;
}

/* A built child: a node is written, an empty side is noted as empty. */
static int keep(walk_t *walk, PyObject *pos, PyObject *node) {
    if (node == Py_None) return PyList_Append(walk->empties, pos);
    return PyDict_SetItem(walk->writes, pos, node);
}

/* _build: the canonical subtree at `pos` holding exactly items[lo:hi], all inserts. */
static PyObject *build(walk_t *walk, PyObject *pos, uint64_t small, int depth, const item_t *items,
                       Py_ssize_t lo, Py_ssize_t hi) {
    Py_ssize_t count = hi - lo;
    if (count == 0) Py_RETURN_NONE;
    if (count == 1) return new_leaf(&items[lo]);
    if (depth >= PATH_BITS) {
        PyErr_SetString(tree_error_type, "two changes share a 256-bit path");
        return NULL;
    }
    Py_ssize_t mid = split_at(items, lo, hi, depth);
    PyObject *result = NULL, *left = NULL, *right = NULL;
    PyObject *left_pos = child_position(pos, small, depth + 1, 0);
    PyObject *right_pos = child_position(pos, small, depth + 1, 1);
    uint8_t left_hash[HASH_BYTES], right_hash[HASH_BYTES];
    if (left_pos == NULL || right_pos == NULL) goto done;
    left = build(walk, left_pos, small << 1, depth + 1, items, lo, mid);
    if (left == NULL) goto done;
    right = build(walk, right_pos, (small << 1) | 1, depth + 1, items, mid, hi);
    if (right == NULL) goto done;
    /* An empty side has no record to write, but it is known empty: the cache
     * keeps it, so the next walk past it reads no record. */
    if (keep(walk, left_pos, left) < 0 || keep(walk, right_pos, right) < 0) goto done;
    if (made_hash(left, left_hash) < 0 || made_hash(right, right_hash) < 0) goto done;
    result = node_hash(left_hash, right_hash);
done:
    Py_XDECREF(left_pos);
    Py_XDECREF(right_pos);
    Py_XDECREF(left);
    Py_XDECREF(right);
    return result;
}

/* The changes of items[lo:hi] that insert, merged with the leaf that was at this
 * position (unless a change names its key), in path order, into walk->scratch. */
static Py_ssize_t merge_with_leaf(walk_t *walk, const tree_node_t *node, Py_ssize_t lo, Py_ssize_t hi) {
    item_t *merged = walk->scratch;
    Py_ssize_t count = 0;
    if (node->kind == NODE_EMPTY) {
        for (Py_ssize_t i = lo; i < hi; i++)
            if (walk->items[i].has_value) merged[count++] = walk->items[i];
        return count;
    }
    item_t leaf;
    leaf.has_value = 1;
    memcpy(leaf.path, node->path, HASH_BYTES);
    memcpy(leaf.digest, node->value_hash, HASH_BYTES);
    Py_ssize_t at = lo;
    while (at < hi && memcmp(walk->items[at].path, leaf.path, HASH_BYTES) < 0) at++;
    int replaced = at < hi && memcmp(walk->items[at].path, leaf.path, HASH_BYTES) == 0;
    for (Py_ssize_t i = lo; i < hi; i++) {
        if (i == at && !replaced) merged[count++] = leaf;
        if (walk->items[i].has_value) merged[count++] = walk->items[i];
    }
    if (at == hi) merged[count++] = leaf;
    return count;
}

static PyObject *update(walk_t *walk, PyObject *pos, uint64_t small, int depth, const tree_node_t *node,
                        Py_ssize_t lo, Py_ssize_t hi);

/* An empty subtree or a leaf: rebuild it from scratch with the changes. */
static PyObject *rebuild(walk_t *walk, PyObject *pos, uint64_t small, int depth, const tree_node_t *node,
                         Py_ssize_t lo, Py_ssize_t hi) {
    Py_ssize_t count = merge_with_leaf(walk, node, lo, hi);
    PyObject *built = build(walk, pos, small, depth, walk->scratch, 0, count);
    if (built == NULL) return NULL;
    if (built != Py_None || node->kind != NODE_EMPTY) {
        if (PyDict_SetItem(walk->writes, pos, built) < 0) goto fail;
        /* A stored leaf became an interior node at a depth without interior
         * records: its record must go. */
        if (node->kind != NODE_EMPTY && PyBytes_CheckExact(built) && (depth & UNSTORED_DEPTH_BITS) &&
            PyList_Append(walk->replaced, pos) < 0)
            goto fail;
    }
    return built;
fail:
    Py_DECREF(built);
    return NULL;
}

/* A subtree left with one side empty: a lone leaf moves up (its old position is
 * emptied), anything else is an interior node over EMPTY. `made` is the
 * child's object when the walk made it, else NULL (the child is unchanged). */
static PyObject *lone_child(walk_t *walk, const tree_node_t *child, PyObject *made, PyObject *child_pos,
                            int child_is_left) {
    if (child->kind == NODE_LEAF) {
        if (PyDict_SetItem(walk->writes, child_pos, Py_None) < 0) return NULL;
        if (made == NULL) return tree_node_to_object(child);
        Py_INCREF(made);
        return made;
    }
    return child_is_left ? node_hash(child->hash, EMPTY) : node_hash(EMPTY, child->hash);
}

/* _update: the subtree at `pos` (now `node`) after the changes items[lo:hi]. */
static PyObject *update(walk_t *walk, PyObject *pos, uint64_t small, int depth, const tree_node_t *node,
                        Py_ssize_t lo, Py_ssize_t hi) {
    if (node->kind != NODE_INTERIOR) return rebuild(walk, pos, small, depth, node, lo, hi);
    if (depth >= PATH_BITS) {
        PyErr_SetString(tree_error_type, "tree deeper than 256 levels: corrupt nodes");
        return NULL;
    }
    Py_ssize_t mid = split_at(walk->items, lo, hi, depth);
    PyObject *result = NULL, *left_made = NULL, *right_made = NULL;
    tree_node_t left, right;
    PyObject *left_pos = child_position(pos, small, depth + 1, 0);
    PyObject *right_pos = child_position(pos, small, depth + 1, 1);
    if (left_pos == NULL || right_pos == NULL) goto done;
    if (node_at(walk, left_pos, small << 1, depth + 1, &left) < 0) goto done;
    if (node_at(walk, right_pos, (small << 1) | 1, depth + 1, &right) < 0) goto done;
    if (mid > lo) {
        left_made = update(walk, left_pos, small << 1, depth + 1, &left, lo, mid);
        if (left_made == NULL || tree_node_hash_from_object(left_made, &left) < 0) goto done;
    }
    if (hi > mid) {
        right_made = update(walk, right_pos, (small << 1) | 1, depth + 1, &right, mid, hi);
        if (right_made == NULL || tree_node_hash_from_object(right_made, &right) < 0) goto done;
    }
    if (left.kind == NODE_EMPTY && right.kind == NODE_EMPTY) {
        result = Py_None;
        Py_INCREF(result);
    } else if (left.kind == NODE_EMPTY) {
        result = lone_child(walk, &right, right_made, right_pos, 0);
    } else if (right.kind == NODE_EMPTY) {
        result = lone_child(walk, &left, left_made, left_pos, 1);
    } else {
        result = node_hash(left.hash, right.hash);
    }
    if (result != NULL && PyDict_SetItem(walk->writes, pos, result) < 0) Py_CLEAR(result);
done:
    Py_XDECREF(left_pos);
    Py_XDECREF(right_pos);
    Py_XDECREF(left_made);
    Py_XDECREF(right_made);
    return result;
}

static int compare_items(const void *a, const void *b) {
    return memcmp(((const item_t *)a)->path, ((const item_t *)b)->path, HASH_BYTES);
}

/* SHA-256 of any buffer (bytes, bytearray, memoryview), as hashlib takes them. */
static int hash_buffer(PyObject *object, uint8_t out[HASH_BYTES]) {
    Py_buffer view;
    if (PyObject_GetBuffer(object, &view, PyBUF_SIMPLE) < 0) return -1;
    int status = sha256(view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return status;
}

/* The changes as items sorted by path; NULL with an exception on a bad key or value. */
static item_t *sorted_items(PyObject *changes, Py_ssize_t *count) {
    PyObject *pairs = PyMapping_Items(changes);
    if (pairs == NULL) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    item_t *items = PyMem_Calloc((size_t)n + 1, sizeof(item_t));
    if (items == NULL) {
        Py_DECREF(pairs);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "changes.items() must give (key, value) pairs");
            PyMem_Free(items);
            Py_DECREF(pairs);
            return NULL;
        }
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        if (hash_buffer(PyTuple_GET_ITEM(pair, 0), items[i].path) < 0 ||
            (value != Py_None && hash_buffer(value, items[i].digest) < 0)) {
            PyMem_Free(items);
            Py_DECREF(pairs);
            return NULL;
        }
        items[i].has_value = value != Py_None;
    }
    Py_DECREF(pairs);
    qsort(items, (size_t)n, sizeof(item_t), compare_items);
    *count = n;
    return items;
}

static PyObject *smt_setup(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *leaf, *error;
    int depth = MAX_SMALL_DEPTH;
    if (!PyArg_ParseTuple(args, "OO|i:setup", &leaf, &error, &depth)) return NULL;
    if (depth < 0 || depth > MAX_SMALL_DEPTH) {
        PyErr_Format(PyExc_ValueError, "small_depth must be 0 to %d", MAX_SMALL_DEPTH);
        return NULL;
    }
    if (!PyType_Check(leaf) || !PyType_Check(error) ||
        !PyType_IsSubtype((PyTypeObject *)error, (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetString(PyExc_TypeError, "setup(Leaf, StateRootError) takes a class and an exception");
        return NULL;
    }
    if (tree_set_leaf_type(leaf) < 0) return NULL;
    Py_INCREF(error);
    Py_XSETREF(tree_error_type, error);
    tree_small_depth = depth;
    Py_RETURN_NONE;
}

static PyObject *smt_update(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cache, *load, *changes;
    if (!PyArg_ParseTuple(args, "O!OO:update", &node_cache_type, &cache, &load, &changes)) return NULL;
    walk_t walk = {(node_cache_t *)cache, load, NULL, NULL, NULL, NULL, 0, NULL};
    PyObject *new_root = NULL, *result = NULL, *pos = NULL;
    tree_node_t root;
    walk.items = sorted_items(changes, &walk.count);
    if (walk.items == NULL) return NULL;
    walk.scratch = PyMem_Calloc((size_t)walk.count + 1, sizeof(item_t));
    walk.writes = PyDict_New();
    walk.replaced = PyList_New(0);
    walk.empties = PyList_New(0);
    pos = PyLong_FromLong(1);
    if (walk.scratch == NULL) PyErr_NoMemory();
    if (walk.scratch == NULL || walk.writes == NULL || walk.replaced == NULL || walk.empties == NULL ||
        pos == NULL)
        goto done;
    if (node_at(&walk, pos, 1, 0, &root) < 0) goto done;
    /* Nothing changes: no writes, as compute_update says. */
    new_root = walk.count == 0 ? tree_node_to_object(&root) : update(&walk, pos, 1, 0, &root, 0, walk.count);
    if (new_root != NULL) result = PyTuple_Pack(4, new_root, walk.writes, walk.replaced, walk.empties);
done:
    PyMem_Free(walk.items);
    PyMem_Free(walk.scratch);
    Py_XDECREF(walk.writes);
    Py_XDECREF(walk.replaced);
    Py_XDECREF(walk.empties);
    Py_XDECREF(new_root);
    Py_XDECREF(pos);
    return result;
}

/* One record: (key_prefix || position's minimal big-endian bytes, value). */
static int append_record(PyObject *out, const Py_buffer *prefix, PyObject *pos, PyObject *value) {
    size_t bits = _PyLong_NumBits(pos);
    if (bits == (size_t)-1 && PyErr_Occurred()) return -1;
    Py_ssize_t size = (Py_ssize_t)((bits + 7) >> 3);
    PyObject *key = PyBytes_FromStringAndSize(NULL, prefix->len + size);
    if (key == NULL) return -1;
    char *buffer = PyBytes_AS_STRING(key);
    memcpy(buffer, prefix->buf, (size_t)prefix->len);
    if (_PyLong_AsByteArray((PyLongObject *)pos, (unsigned char *)buffer + prefix->len, (size_t)size,
                            0, 0) < 0) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *pair = PyTuple_Pack(2, key, value);
    Py_DECREF(key);
    if (pair == NULL) return -1;
    int status = PyList_Append(out, pair);
    Py_DECREF(pair);
    return status;
}

/* A record's value: 0x00 || path || value hash for a leaf, 0x01 || hash for an interior node. */
static PyObject *record_value(PyObject *node) {
    uint8_t buffer[1 + 2 * HASH_BYTES];
    if (tree_is_leaf(node)) {
        buffer[0] = 0x00;
        if (tree_leaf_path(node, buffer + 1) < 0 || tree_leaf_value_hash(node, buffer + 1 + HASH_BYTES) < 0)
            return NULL;
        return PyBytes_FromStringAndSize((const char *)buffer, sizeof buffer);
    }
    if (!PyBytes_CheckExact(node)) {
        PyErr_Format(PyExc_TypeError, "a tree node of type %s", Py_TYPE(node)->tp_name);
        return NULL;
    }
    PyObject *value = PyBytes_FromStringAndSize(NULL, 1 + PyBytes_GET_SIZE(node));
    if (value == NULL) return NULL;
    PyBytes_AS_STRING(value)[0] = 0x01;
    memcpy(PyBytes_AS_STRING(value) + 1, PyBytes_AS_STRING(node), (size_t)PyBytes_GET_SIZE(node));
    return value;
}

/* SmtUpdate.records: the (key, record or None) pairs of every changed position
 * that has, or had, a record; in the order of the writes. */
static PyObject *smt_records(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *writes, *replaced;
    Py_buffer prefix;
    if (!PyArg_ParseTuple(args, "O!Oy*:records", &PyDict_Type, &writes, &replaced, &prefix)) return NULL;
    if (tree_leaf_type == NULL) {
        PyBuffer_Release(&prefix);
        PyErr_SetString(PyExc_RuntimeError, "setup(Leaf, StateRootError) was not called");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    Py_ssize_t at = 0;
    PyObject *pos, *node;
    while (out != NULL && PyDict_Next(writes, &at, &pos, &node)) {
        int status;
        /* Owned for this pass: a Leaf's attributes or `replaced`'s __contains__
         * may run Python code that changes `writes` under us. */
        Py_INCREF(pos);
        Py_INCREF(node);
        if (!PyLong_CheckExact(pos)) {
            PyErr_SetString(PyExc_TypeError, "a tree position is not an int");
            status = -1;
        } else if (node == Py_None) {
            status = append_record(out, &prefix, pos, Py_None);
        } else if (tree_is_leaf(node) || !((_PyLong_NumBits(pos) - 1) & UNSTORED_DEPTH_BITS)) {
            PyObject *value = record_value(node);
            status = value == NULL ? -1 : append_record(out, &prefix, pos, value);
            Py_XDECREF(value);
        } else {
            /* An interior node at an unstored depth has no record, unless a leaf was there. */
            status = PySequence_Contains(replaced, pos);
            if (status == 1) status = append_record(out, &prefix, pos, Py_None);
        }
        Py_DECREF(pos);
        Py_DECREF(node);
        if (status < 0) Py_CLEAR(out);
    }
    PyBuffer_Release(&prefix);
    return out;
}

static PyMethodDef methods[] = {
    {"records", smt_records, METH_VARARGS,
     "records(writes, replaced, key_prefix) -> [(key, record or None)]: SmtUpdate.records in C."},
    {"setup", smt_setup, METH_VARARGS,
     "setup(Leaf, StateRootError, small_depth=62): the node class, the error to raise, and the "
     "depth down to which positions are computed as uint64s (lower only in tests)."},
    {"update", smt_update, METH_VARARGS,
     "update(cache, load, changes) -> (new root node, writes, replaced, empties): "
     "SparseMerkleTree._update from the root, in C, over a NodeCache."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_smt", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__smt(void) {
    digest_ctx = EVP_MD_CTX_new();
#if OPENSSL_VERSION_MAJOR >= 3
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); /* fetched once, not per hash */
#else
    sha256_md = (EVP_MD *)EVP_sha256();
#endif
    if (digest_ctx == NULL || sha256_md == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL has no SHA-256 digest context");
        return NULL;
    }
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) return NULL;
    if (node_cache_module_init(mod) < 0 ||
        PyModule_AddIntConstant(mod, "INTERIOR_RECORD_DEPTHS", INTERIOR_RECORD_DEPTHS) < 0)
        Py_CLEAR(mod);
    return mod;
}
