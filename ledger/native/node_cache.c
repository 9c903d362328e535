/* NodeCache: SparseMerkleTree's node cache, a mapping of positions to nodes
 * (None, 32 hash bytes or a Leaf) kept in a node_table_t. It answers the dict
 * operations the tree uses, and refuses anything that is not a node, so the C
 * walk never meets a corrupt cached node. */
#include "node_cache.h"

#include <string.h>
#include <structmember.h>

PyObject *tree_leaf_type = NULL;
PyObject *tree_error_type = NULL;
int tree_small_depth = MAX_SMALL_DEPTH;
static PyObject *str_hash, *str_path, *str_value_hash;

int tree_is_leaf(PyObject *object) { return PyObject_TypeCheck(object, (PyTypeObject *)tree_leaf_type); }

int tree_copy_hash(PyObject *value, uint8_t out[NODE_HASH_BYTES], const char *what) {
    if (!PyBytes_CheckExact(value) || PyBytes_GET_SIZE(value) != NODE_HASH_BYTES) {
        PyErr_Format(tree_error_type, "%s is not %d hash bytes: corrupt nodes", what, NODE_HASH_BYTES);
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(value), NODE_HASH_BYTES);
    return 0;
}

static int leaf_field(PyObject *leaf, PyObject *name, uint8_t out[NODE_HASH_BYTES]) {
    PyObject *value = PyObject_GetAttr(leaf, name);
    if (value == NULL) return -1;
    int status = tree_copy_hash(value, out, "a leaf's field");
    Py_DECREF(value);
    return status;
}

int tree_leaf_path(PyObject *leaf, uint8_t out[NODE_HASH_BYTES]) { return leaf_field(leaf, str_path, out); }

int tree_leaf_value_hash(PyObject *leaf, uint8_t out[NODE_HASH_BYTES]) {
    return leaf_field(leaf, str_value_hash, out);
}

int tree_node_hash_from_object(PyObject *object, tree_node_t *out) {
    if (object == Py_None) {
        out->kind = NODE_EMPTY;
        memset(out->hash, 0, NODE_HASH_BYTES);
        return 0;
    }
    if (tree_is_leaf(object)) {
        out->kind = NODE_LEAF;
        return leaf_field(object, str_hash, out->hash);
    }
    if (!PyBytes_Check(object)) {
        PyErr_Format(tree_error_type, "a tree node of type %s: corrupt nodes", Py_TYPE(object)->tp_name);
        return -1;
    }
    out->kind = NODE_INTERIOR;
    return tree_copy_hash(object, out->hash, "an interior node");
}

int tree_node_from_object(PyObject *object, tree_node_t *out) {
    if (tree_node_hash_from_object(object, out) < 0) return -1;
    if (out->kind != NODE_LEAF) return 0;
    if (tree_leaf_path(object, out->path) < 0 || tree_leaf_value_hash(object, out->value_hash) < 0) return -1;
    return 0;
}

/* Where Leaf's __slots__ live in its instances: the offsets of its member
 * descriptors, as CPython lays out a class with __slots__. */
enum { SLOT_HASH, SLOT_PATH, SLOT_PATH_INT, SLOT_VALUE_HASH, LEAF_SLOTS };
static const char *const leaf_slot_names[LEAF_SLOTS] = {"hash", "path", "path_int", "value_hash"};
static Py_ssize_t leaf_slot_offsets[LEAF_SLOTS];

int tree_set_leaf_type(PyObject *leaf) {
    PyTypeObject *type = (PyTypeObject *)leaf;
    for (int slot = 0; slot < LEAF_SLOTS; slot++) {
        leaf_slot_offsets[slot] = -1;
        for (const PyMemberDef *member = type->tp_members; member != NULL && member->name != NULL; member++)
            if (member->type == T_OBJECT_EX && strcmp(member->name, leaf_slot_names[slot]) == 0)
                leaf_slot_offsets[slot] = member->offset;
        if (leaf_slot_offsets[slot] < 0) {
            PyErr_Format(PyExc_TypeError, "the leaf class has no __slots__ entry %s", leaf_slot_names[slot]);
            return -1;
        }
    }
    Py_INCREF(leaf);
    Py_XSETREF(tree_leaf_type, leaf);
    return 0;
}

PyObject *tree_make_leaf(const uint8_t path[NODE_HASH_BYTES], const uint8_t value_hash[NODE_HASH_BYTES],
                         const uint8_t hash[NODE_HASH_BYTES]) {
    PyObject *fields[LEAF_SLOTS];
    fields[SLOT_HASH] = PyBytes_FromStringAndSize((const char *)hash, NODE_HASH_BYTES);
    fields[SLOT_PATH] = PyBytes_FromStringAndSize((const char *)path, NODE_HASH_BYTES);
    fields[SLOT_PATH_INT] = _PyLong_FromByteArray(path, NODE_HASH_BYTES, 0, 0); /* big-endian, unsigned */
    fields[SLOT_VALUE_HASH] = PyBytes_FromStringAndSize((const char *)value_hash, NODE_HASH_BYTES);
    PyTypeObject *type = (PyTypeObject *)tree_leaf_type;
    PyObject *leaf = NULL;
    if (fields[0] != NULL && fields[1] != NULL && fields[2] != NULL && fields[3] != NULL)
        leaf = type->tp_alloc(type, 0);
    for (int slot = 0; slot < LEAF_SLOTS; slot++) {
        if (leaf != NULL) *(PyObject **)((char *)leaf + leaf_slot_offsets[slot]) = fields[slot];
        else Py_XDECREF(fields[slot]);
    }
    return leaf;
}

PyObject *tree_node_to_object(const tree_node_t *node) {
    if (node->kind == NODE_EMPTY) Py_RETURN_NONE;
    if (node->kind == NODE_INTERIOR) return PyBytes_FromStringAndSize((const char *)node->hash, NODE_HASH_BYTES);
    return tree_make_leaf(node->path, node->value_hash, node->hash);
}

/* 1: a position down to the cache's small depth, as *small; 0: a deeper one
 * (kept in the dict); -1: not a position. */
static int parse_position(const node_cache_t *cache, PyObject *key, uint64_t *small) {
    if (!PyLong_Check(key)) {
        PyErr_Format(PyExc_TypeError, "a tree position is an int, not %s", Py_TYPE(key)->tp_name);
        return -1;
    }
    if (_PyLong_Sign(key) <= 0) {
        PyErr_SetString(PyExc_ValueError, "a tree position is a positive int");
        return -1;
    }
    size_t bits = _PyLong_NumBits(key);
    if (bits == (size_t)-1 && PyErr_Occurred()) return -1;
    if (bits - 1 > (size_t)cache->small_depth) return 0;
    *small = PyLong_AsUnsignedLongLong(key);
    return *small == (uint64_t)-1 && PyErr_Occurred() ? -1 : 1;
}

int node_cache_find(node_cache_t *cache, PyObject *pos, uint64_t small, int depth, tree_node_t *out) {
    if (depth <= cache->small_depth) return node_table_get(&cache->table, small, out);
    PyObject *object = PyDict_GetItemWithError(cache->deep, pos);
    if (object == NULL) return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(object); /* converting a Leaf runs Python code */
    int status = tree_node_from_object(object, out);
    Py_DECREF(object);
    return status < 0 ? -1 : 1;
}

/* The node object at a key (a new reference), or NULL: with an exception on an
 * error, without one when it is not cached. */
static PyObject *lookup(node_cache_t *cache, PyObject *key) {
    uint64_t small;
    int kind = parse_position(cache, key, &small);
    if (kind < 0) return NULL;
    if (kind == 0) {
        PyObject *object = PyDict_GetItemWithError(cache->deep, key);
        Py_XINCREF(object);
        return object;
    }
    tree_node_t node;
    return node_table_get(&cache->table, small, &node) ? tree_node_to_object(&node) : NULL;
}

static int store(node_cache_t *cache, PyObject *key, PyObject *value) {
    uint64_t small;
    int kind = parse_position(cache, key, &small);
    if (kind < 0) return -1;
    if (value == NULL) { /* del cache[key] */
        if (kind == 0) return PyDict_DelItem(cache->deep, key);
        if (node_table_remove(&cache->table, small)) return 0;
        PyErr_SetObject(PyExc_KeyError, key);
        return -1;
    }
    tree_node_t node;
    if (tree_node_from_object(value, &node) < 0) return -1;
    if (kind == 0) return PyDict_SetItem(cache->deep, key, value);
    if (node_table_put(&cache->table, small, &node) == 0) return 0;
    PyErr_NoMemory();
    return -1;
}

static PyObject *cache_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (!_PyArg_NoPositional("NodeCache", args) || !_PyArg_NoKeywords("NodeCache", kwargs)) return NULL;
    if (tree_leaf_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup(Leaf, StateRootError) was not called");
        return NULL;
    }
    node_cache_t *cache = (node_cache_t *)type->tp_alloc(type, 0);
    if (cache == NULL) return NULL;
    cache->small_depth = tree_small_depth;
    cache->deep = PyDict_New();
    if (node_table_init(&cache->table) < 0 && cache->deep != NULL) PyErr_NoMemory();
    if (cache->deep == NULL || cache->table.slots == NULL) {
        Py_DECREF(cache);
        return NULL;
    }
    return (PyObject *)cache;
}

static void cache_dealloc(node_cache_t *cache) {
    node_table_free(&cache->table);
    Py_XDECREF(cache->deep);
    Py_TYPE(cache)->tp_free((PyObject *)cache);
}

static Py_ssize_t cache_length(node_cache_t *cache) {
    return (Py_ssize_t)cache->table.count + PyDict_GET_SIZE(cache->deep);
}

static PyObject *cache_subscript(node_cache_t *cache, PyObject *key) {
    PyObject *object = lookup(cache, key);
    if (object == NULL && !PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, key);
    return object;
}

static int cache_contains(node_cache_t *cache, PyObject *key) {
    PyObject *object = lookup(cache, key);
    if (object == NULL) return PyErr_Occurred() ? -1 : 0;
    Py_DECREF(object);
    return 1;
}

static PyObject *cache_get(node_cache_t *cache, PyObject *const *args, Py_ssize_t nargs) {
    if (!_PyArg_CheckPositional("get", nargs, 1, 2)) return NULL;
    PyObject *object = lookup(cache, args[0]);
    if (object != NULL || PyErr_Occurred()) return object;
    PyObject *fallback = nargs == 2 ? args[1] : Py_None;
    Py_INCREF(fallback);
    return fallback;
}

typedef struct {
    uint64_t *positions;
    tree_node_t *nodes;
    size_t at;
} snapshot_t;

static int snapshot_one(uint64_t pos, const tree_node_t *node, void *context) {
    snapshot_t *snapshot = context;
    snapshot->positions[snapshot->at] = pos;
    snapshot->nodes[snapshot->at++] = *node;
    return 0;
}

/* [(position, node)]: the table's nodes (copied first: making a Leaf runs
 * Python code), then the deeper ones. */
static PyObject *cache_items(node_cache_t *cache, PyObject *unused) {
    (void)unused;
    size_t count = cache->table.count;
    snapshot_t snapshot = {PyMem_Malloc((count + 1) * sizeof(uint64_t)),
                           PyMem_Malloc((count + 1) * sizeof(tree_node_t)), 0};
    PyObject *out = NULL;
    if (snapshot.positions == NULL || snapshot.nodes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    node_table_each(&cache->table, snapshot_one, &snapshot);
    out = PyDict_Items(cache->deep);
    for (size_t i = 0; out != NULL && i < snapshot.at; i++) {
        PyObject *pos = PyLong_FromUnsignedLongLong(snapshot.positions[i]);
        PyObject *node = pos == NULL ? NULL : tree_node_to_object(&snapshot.nodes[i]);
        PyObject *pair = node == NULL ? NULL : PyTuple_Pack(2, pos, node);
        Py_XDECREF(pos);
        Py_XDECREF(node);
        if (pair == NULL || PyList_Append(out, pair) < 0) Py_CLEAR(out);
        Py_XDECREF(pair);
    }
done:
    PyMem_Free(snapshot.positions);
    PyMem_Free(snapshot.nodes);
    return out;
}

static PyObject *cache_clear(node_cache_t *cache, PyObject *unused) {
    (void)unused;
    node_table_free(&cache->table);
    PyDict_Clear(cache->deep);
    if (node_table_init(&cache->table) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* keep_below(limit): drop every position >= limit (SparseMerkleTree._evict). */
static PyObject *cache_keep_below(node_cache_t *cache, PyObject *limit) {
    if (!PyLong_Check(limit) || _PyLong_Sign(limit) < 0) {
        PyErr_SetString(PyExc_TypeError, "keep_below takes a non-negative int");
        return NULL;
    }
    uint64_t bound = PyLong_AsUnsignedLongLong(limit);
    if (bound == (uint64_t)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return NULL;
        PyErr_Clear(); /* beyond every uint64 position */
    }
    if (node_table_keep_below(&cache->table, bound) < 0) return PyErr_NoMemory();
    PyObject *kept = PyDict_New();
    Py_ssize_t at = 0;
    PyObject *pos, *node;
    while (kept != NULL && PyDict_Next(cache->deep, &at, &pos, &node)) {
        int below = PyObject_RichCompareBool(pos, limit, Py_LT);
        if (below < 0 || (below && PyDict_SetItem(kept, pos, node) < 0)) Py_CLEAR(kept);
    }
    if (kept == NULL) return NULL;
    Py_SETREF(cache->deep, kept);
    Py_RETURN_NONE;
}

/* apply(writes, empties): SparseMerkleTree.apply_update's loop. Every written
 * node goes in (an emptied position as None), then every known-empty one. */
static PyObject *cache_apply(node_cache_t *cache, PyObject *const *args, Py_ssize_t nargs) {
    if (!_PyArg_CheckPositional("apply", nargs, 2, 2)) return NULL;
    PyObject *writes = args[0], *empties = args[1];
    if (!PyDict_Check(writes) || !PyTuple_Check(empties)) {
        PyErr_SetString(PyExc_TypeError, "apply takes an update's writes (a dict) and empties (a tuple)");
        return NULL;
    }
    Py_ssize_t at = 0;
    PyObject *pos, *node;
    while (PyDict_Next(writes, &at, &pos, &node)) {
        /* Owned for this pass: converting a Leaf runs Python code. */
        Py_INCREF(pos);
        Py_INCREF(node);
        int status = store(cache, pos, node);
        Py_DECREF(pos);
        Py_DECREF(node);
        if (status < 0) return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(empties); i++)
        if (store(cache, PyTuple_GET_ITEM(empties, i), Py_None) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMappingMethods cache_mapping = {
    .mp_length = (lenfunc)cache_length,
    .mp_subscript = (binaryfunc)cache_subscript,
    .mp_ass_subscript = (objobjargproc)store,
};

static PySequenceMethods cache_sequence = {.sq_contains = (objobjproc)cache_contains};

static PyMethodDef cache_methods[] = {
    {"get", (PyCFunction)(void (*)(void))cache_get, METH_FASTCALL, "get(position, default=None)"},
    {"items", (PyCFunction)cache_items, METH_NOARGS, "items() -> [(position, node)], a snapshot"},
    {"clear", (PyCFunction)cache_clear, METH_NOARGS, "clear(): drop every node and free the table"},
    {"keep_below", (PyCFunction)cache_keep_below, METH_O, "keep_below(limit): drop positions >= limit"},
    {"apply", (PyCFunction)(void (*)(void))cache_apply, METH_FASTCALL,
     "apply(writes, empties): cache every written node, then every known-empty position"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject node_cache_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ledger.native._smt.NodeCache",
    .tp_doc = "The state tree's node cache: positions to nodes, in a compact C table.",
    .tp_basicsize = sizeof(node_cache_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = cache_new,
    .tp_dealloc = (destructor)cache_dealloc,
    .tp_as_mapping = &cache_mapping,
    .tp_as_sequence = &cache_sequence,
    .tp_methods = cache_methods,
};

int node_cache_module_init(PyObject *module) {
    str_hash = PyUnicode_InternFromString("hash");
    str_path = PyUnicode_InternFromString("path");
    str_value_hash = PyUnicode_InternFromString("value_hash");
    if (str_hash == NULL || str_path == NULL || str_value_hash == NULL) return -1;
    if (PyType_Ready(&node_cache_type) < 0) return -1;
    Py_INCREF(&node_cache_type);
    if (PyModule_AddObject(module, "NodeCache", (PyObject *)&node_cache_type) < 0) {
        Py_DECREF(&node_cache_type);
        return -1;
    }
    return 0;
}
