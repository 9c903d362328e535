/* The state tree's node cache as a compact open-addressing table.
 *
 * Why: the cache was a dict of Python ints to Python objects, about 240 bytes
 * a node spread over four or five heap objects, and every node the walk
 * visits is a random access into it. Past about 30,000 keys that working set
 * outgrows the CPU's caches, and the walk's cost per attest doubled between
 * 30,000 and 200,000 keys (nineteenth session). Here a node is one 48-byte
 * slot (a leaf adds 64 bytes in a slab), found by one multiplicative hash and
 * a linear probe, with no Python object and no reference count.
 *
 * Positions are heap indices (root 1), so 0 marks a free slot. Deletion shifts
 * the following run back (no tombstones), and the table doubles at 3/4 load.
 * Nothing here calls into Python.
 */
#ifndef VEIL_NODE_TABLE_H
#define VEIL_NODE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define NODE_HASH_BYTES 32

enum { NODE_EMPTY = 0, NODE_INTERIOR = 1, NODE_LEAF = 2 };

/* A decoded node: an empty subtree, an interior node's hash, or a leaf. */
typedef struct {
    uint8_t kind;
    uint8_t hash[NODE_HASH_BYTES];       /* EMPTY (zeros), the node's or the leaf's hash */
    uint8_t path[NODE_HASH_BYTES];       /* NODE_LEAF only */
    uint8_t value_hash[NODE_HASH_BYTES]; /* NODE_LEAF only */
} tree_node_t;

typedef struct {
    uint64_t pos;  /* 0: a free slot */
    uint32_t leaf; /* NODE_LEAF: its path and value hash in the leaf slab */
    uint8_t kind;
    uint8_t hash[NODE_HASH_BYTES];
} table_slot_t;

typedef struct {
    uint8_t path[NODE_HASH_BYTES];
    uint8_t value_hash[NODE_HASH_BYTES];
} table_leaf_t;

typedef struct {
    table_slot_t *slots;
    uint64_t mask; /* slot count - 1 (a power of two) */
    int shift;     /* 64 - log2(slot count) */
    size_t count;
    table_leaf_t *leaves;
    uint32_t leaf_used, leaf_capacity, free_leaf; /* free list linked through path[0..3] */
} node_table_t;

/* 0, or -1 when memory runs out (the table is then empty but usable). */
int node_table_init(node_table_t *table);
void node_table_free(node_table_t *table);
/* 1 and the node in *out when cached, 0 when not. */
int node_table_get(const node_table_t *table, uint64_t pos, tree_node_t *out);
/* 0, or -1 when memory runs out (the table is unchanged). pos must be > 0. */
int node_table_put(node_table_t *table, uint64_t pos, const tree_node_t *node);
/* 1 when it was cached, 0 when not. */
int node_table_remove(node_table_t *table, uint64_t pos);
/* Drop every position >= limit; 0, or -1 when memory runs out (then it is cleared). */
int node_table_keep_below(node_table_t *table, uint64_t limit);
/* Visit every cached node; stops early when visit returns nonzero, and returns that. */
int node_table_each(const node_table_t *table, int (*visit)(uint64_t, const tree_node_t *, void *),
                    void *context);

#endif
