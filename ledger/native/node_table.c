/* The node cache's table (node_table.h says why it exists). */
#include "node_table.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_SLOTS_LOG2 10
#define NO_LEAF UINT32_MAX

/* Fibonacci hashing: the top bits of pos * 2^64/phi. Heap positions of one
 * subtree are consecutive, and the multiplication spreads them over the table. */
static inline uint64_t home_of(const node_table_t *table, uint64_t pos) {
    return (pos * UINT64_C(0x9E3779B97F4A7C15)) >> table->shift;
}

static int allocate_slots(node_table_t *table, int log2) {
    table_slot_t *slots = calloc((size_t)1 << log2, sizeof(table_slot_t));
    if (slots == NULL) return -1;
    table->slots = slots;
    table->mask = ((uint64_t)1 << log2) - 1;
    table->shift = 64 - log2;
    table->count = 0;
    return 0;
}

int node_table_init(node_table_t *table) {
    memset(table, 0, sizeof *table);
    table->free_leaf = NO_LEAF;
    return allocate_slots(table, INITIAL_SLOTS_LOG2);
}

void node_table_free(node_table_t *table) {
    free(table->slots);
    free(table->leaves);
    memset(table, 0, sizeof *table);
    table->free_leaf = NO_LEAF;
}

/* The slot holding pos, or the free slot where it would go. */
static table_slot_t *probe(const node_table_t *table, uint64_t pos) {
    uint64_t at = home_of(table, pos);
    for (;;) {
        table_slot_t *slot = &table->slots[at];
        if (slot->pos == pos || slot->pos == 0) return slot;
        at = (at + 1) & table->mask;
    }
}

int node_table_get(const node_table_t *table, uint64_t pos, tree_node_t *out) {
    if (table->slots == NULL) return 0;
    const table_slot_t *slot = probe(table, pos);
    if (slot->pos == 0) return 0;
    out->kind = slot->kind;
    memcpy(out->hash, slot->hash, NODE_HASH_BYTES);
    if (slot->kind == NODE_LEAF) {
        const table_leaf_t *leaf = &table->leaves[slot->leaf];
        memcpy(out->path, leaf->path, NODE_HASH_BYTES);
        memcpy(out->value_hash, leaf->value_hash, NODE_HASH_BYTES);
    }
    return 1;
}

static int take_leaf(node_table_t *table, uint32_t *index) {
    if (table->free_leaf != NO_LEAF) {
        *index = table->free_leaf;
        memcpy(&table->free_leaf, table->leaves[*index].path, sizeof(uint32_t));
        return 0;
    }
    if (table->leaf_used == table->leaf_capacity) {
        uint32_t capacity = table->leaf_capacity ? table->leaf_capacity * 2 : 256;
        if (capacity <= table->leaf_capacity || capacity == NO_LEAF) return -1;
        table_leaf_t *leaves = realloc(table->leaves, (size_t)capacity * sizeof(table_leaf_t));
        if (leaves == NULL) return -1;
        table->leaves = leaves;
        table->leaf_capacity = capacity;
    }
    *index = table->leaf_used++;
    return 0;
}

static void give_leaf(node_table_t *table, uint32_t index) {
    memcpy(table->leaves[index].path, &table->free_leaf, sizeof(uint32_t));
    table->free_leaf = index;
}

/* Doubles the slots and re-places every entry; leaf indices stay valid. */
static int grow(node_table_t *table) {
    table_slot_t *old = table->slots;
    uint64_t old_slots = table->mask + 1;
    size_t count = table->count;
    if (allocate_slots(table, 64 - table->shift + 1) < 0) return -1;
    for (uint64_t i = 0; i < old_slots; i++)
        if (old[i].pos != 0) *probe(table, old[i].pos) = old[i];
    table->count = count;
    free(old);
    return 0;
}

int node_table_put(node_table_t *table, uint64_t pos, const tree_node_t *node) {
    if (table->slots == NULL && allocate_slots(table, INITIAL_SLOTS_LOG2) < 0) return -1;
    table_slot_t *slot = probe(table, pos);
    if (slot->pos == 0 && (table->count + 1) * 4 > (table->mask + 1) * 3) {
        if (grow(table) < 0) return -1;
        slot = probe(table, pos);
    }
    int had_leaf = slot->pos != 0 && slot->kind == NODE_LEAF;
    if (node->kind == NODE_LEAF && !had_leaf && take_leaf(table, &slot->leaf) < 0) return -1;
    if (node->kind != NODE_LEAF && had_leaf) give_leaf(table, slot->leaf);
    if (slot->pos == 0) table->count++;
    slot->pos = pos;
    slot->kind = node->kind;
    memcpy(slot->hash, node->hash, NODE_HASH_BYTES);
    if (node->kind == NODE_LEAF) {
        memcpy(table->leaves[slot->leaf].path, node->path, NODE_HASH_BYTES);
        memcpy(table->leaves[slot->leaf].value_hash, node->value_hash, NODE_HASH_BYTES);
    }
    return 0;
}

/* Whether `home` lies cyclically in (gap, at]: then the entry at `at` must not
 * move back into the gap, or a probe from its home would stop short of it. */
static inline int home_between(uint64_t gap, uint64_t at, uint64_t home) {
    return gap <= at ? (gap < home && home <= at) : (gap < home || home <= at);
}

int node_table_remove(node_table_t *table, uint64_t pos) {
    if (table->slots == NULL) return 0;
    table_slot_t *slot = probe(table, pos);
    if (slot->pos == 0) return 0;
    if (slot->kind == NODE_LEAF) give_leaf(table, slot->leaf);
    uint64_t gap = (uint64_t)(slot - table->slots);
    for (uint64_t at = (gap + 1) & table->mask; table->slots[at].pos != 0; at = (at + 1) & table->mask) {
        if (home_between(gap, at, home_of(table, table->slots[at].pos))) continue;
        table->slots[gap] = table->slots[at];
        gap = at;
    }
    table->slots[gap].pos = 0;
    table->count--;
    return 1;
}

int node_table_keep_below(node_table_t *table, uint64_t limit) {
    if (table->slots == NULL) return 0;
    size_t kept = 0;
    for (uint64_t i = 0; i <= table->mask; i++)
        if (table->slots[i].pos != 0 && table->slots[i].pos < limit) kept++;
    tree_node_t *nodes = malloc((kept ? kept : 1) * sizeof(tree_node_t));
    uint64_t *positions = malloc((kept ? kept : 1) * sizeof(uint64_t));
    int status = nodes != NULL && positions != NULL ? 0 : -1;
    size_t at = 0;
    for (uint64_t i = 0; status == 0 && i <= table->mask; i++) {
        const table_slot_t *slot = &table->slots[i];
        if (slot->pos == 0 || slot->pos >= limit) continue;
        positions[at] = slot->pos;
        node_table_get(table, slot->pos, &nodes[at++]);
    }
    /* Rebuilt from scratch so the leaf slab is compacted as well. */
    node_table_free(table);
    if (node_table_init(table) < 0) status = -1;
    for (size_t i = 0; status == 0 && i < kept; i++) status = node_table_put(table, positions[i], &nodes[i]);
    if (status < 0) {
        node_table_free(table);
        node_table_init(table);
    }
    free(nodes);
    free(positions);
    return status;
}

int node_table_each(const node_table_t *table, int (*visit)(uint64_t, const tree_node_t *, void *),
                    void *context) {
    for (uint64_t i = 0; table->slots != NULL && i <= table->mask; i++) {
        if (table->slots[i].pos == 0) continue;
        tree_node_t node;
        node_table_get(table, table->slots[i].pos, &node);
        int stop = visit(table->slots[i].pos, &node, context);
        if (stop) return stop;
    }
    return 0;
}
