/* The node objects ledger/state_root.py uses, and the NodeCache type that keeps
 * them compactly in a node_table_t (node_table.h says why). */
#ifndef VEIL_NODE_CACHE_H
#define VEIL_NODE_CACHE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "node_table.h"

#define MAX_SMALL_DEPTH 62 /* positions up to this depth fit in a uint64 */

extern PyObject *tree_leaf_type;  /* ledger.state_root.Leaf, from setup() */
extern PyObject *tree_error_type; /* ledger.state_root.StateRootError, from setup() */
/* Below this depth positions are uint64s; deeper ones Python ints. setup() can
 * lower it so the tests reach the deep path without 63-bit path collisions. */
extern int tree_small_depth;

int tree_is_leaf(PyObject *object);
/* 32 hash bytes out of a bytes object; anything else is the tree error (corrupt nodes). */
int tree_copy_hash(PyObject *value, uint8_t out[NODE_HASH_BYTES], const char *what);
/* A leaf's `path` or `value_hash`. */
int tree_leaf_path(PyObject *leaf, uint8_t out[NODE_HASH_BYTES]);
int tree_leaf_value_hash(PyObject *leaf, uint8_t out[NODE_HASH_BYTES]);
/* None, 32 hash bytes or a Leaf into *out; the tree error for anything else. */
int tree_node_from_object(PyObject *object, tree_node_t *out);
/* Only the kind and the hash (a parent needs no more); the same errors. */
int tree_node_hash_from_object(PyObject *object, tree_node_t *out);
/* None, bytes or a new Leaf; a new reference. */
PyObject *tree_node_to_object(const tree_node_t *node);
/* A new Leaf of a path, a value hash and the leaf's hash, filled in without
 * running Leaf.__init__ (which would hash again, in Python). */
PyObject *tree_make_leaf(const uint8_t path[NODE_HASH_BYTES], const uint8_t value_hash[NODE_HASH_BYTES],
                         const uint8_t hash[NODE_HASH_BYTES]);
/* Takes the Leaf class and finds its four slots; 0, or -1 with an exception. */
int tree_set_leaf_type(PyObject *leaf);

typedef struct {
    PyObject_HEAD
    node_table_t table; /* positions down to small_depth */
    PyObject *deep;     /* dict: deeper positions (Python ints) to node objects */
    int small_depth;    /* tree_small_depth when this cache was made */
} node_cache_t;

extern PyTypeObject node_cache_type;

/* The node cached at a position (its int, and its uint64 form when depth <=
 * cache->small_depth): 1 with *out filled, 0 if not cached, -1 on error. */
int node_cache_find(node_cache_t *cache, PyObject *pos, uint64_t small, int depth, tree_node_t *out);

/* Adds the type and the strings it needs; 0, or -1 with an exception. */
int node_cache_module_init(PyObject *module);

#endif
