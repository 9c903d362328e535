/*
 * Scalar vectors mod ℓ for the fixed-table terms of a multiscalar product,
 * on libdecaf's scalar arithmetic.
 *
 * Batch verification sums, slot by slot, every proof's generator scalars.
 * Each proof's vector is a product over the bits of the index,
 * v_i = seed · Π_{r : bit r of i set} f_r, so it is built by doubling a table
 * (one multiplication per entry) and added in place. In Python that work was
 * the larger share of a batch once the multiscalar product itself was native.
 * Public data only: nothing here needs to be constant time.
 */
#include "veil_msm.h"

#include <stdlib.h>
#include <string.h>

#include <decaf/point_255.h>

#define MAX_ROUNDS 16 /* 2^16 entries: far above any supported proof size (2^10) */

struct veil_scalars {
    size_t count;
    decaf_255_scalar_t *values;
};

veil_scalars *veil_scalars_new(size_t count) {
    veil_scalars *vector = malloc(sizeof *vector);
    if (vector == NULL) return NULL;
    vector->count = count;
    vector->values = calloc(count ? count : 1, sizeof(decaf_255_scalar_t));
    if (vector->values == NULL) {
        free(vector);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) decaf_255_scalar_copy(vector->values[i], decaf_255_scalar_zero);
    return vector;
}

void veil_scalars_free(veil_scalars *vector) {
    if (vector != NULL) {
        free(vector->values);
        free(vector);
    }
}

/* Any 32-byte value, reduced mod ℓ (decode reports "was not reduced", which we allow). */
static void read_scalar(decaf_255_scalar_t out, const uint8_t *bytes) {
    decaf_255_scalar_decode_long(out, bytes, 32);
}

int veil_scalars_add_products(veil_scalars *vector, size_t first, size_t stride, int low_bits,
                              const uint8_t *seed, const uint8_t *factors, int rounds) {
    if (rounds < 0 || rounds > MAX_ROUNDS || low_bits < 0 || low_bits > rounds)
        return VEIL_MSM_BAD_TABLE;
    size_t entries = (size_t)1 << rounds;
    size_t row = (size_t)1 << low_bits;
    size_t rows = entries / row;
    if (first > vector->count || (rows - 1) * stride + row > vector->count - first ||
        (rows > 1 && stride < row))
        return VEIL_MSM_BAD_TABLE;
    decaf_255_scalar_t *table = malloc(entries * sizeof(decaf_255_scalar_t));
    if (table == NULL) return VEIL_MSM_NO_MEMORY;
    read_scalar(table[0], seed);
    for (int r = 0; r < rounds; r++) {
        decaf_255_scalar_t factor;
        read_scalar(factor, factors + 32 * r);
        size_t half = (size_t)1 << r;
        for (size_t i = 0; i < half; i++) decaf_255_scalar_mul(table[half + i], table[i], factor);
    }
    for (size_t i = 0; i < entries; i++) {
        size_t slot = first + (i / row) * stride + i % row;
        decaf_255_scalar_add(vector->values[slot], vector->values[slot], table[i]);
    }
    free(table);
    return VEIL_MSM_OK;
}

int veil_scalars_add_constant(veil_scalars *vector, size_t first, size_t count,
                              const uint8_t *value) {
    if (first > vector->count || count > vector->count - first) return VEIL_MSM_BAD_TABLE;
    decaf_255_scalar_t constant;
    read_scalar(constant, value);
    for (size_t i = first; i < first + count; i++)
        decaf_255_scalar_add(vector->values[i], vector->values[i], constant);
    return VEIL_MSM_OK;
}

void veil_scalars_encode(const veil_scalars *vector, uint8_t *out) {
    for (size_t i = 0; i < vector->count; i++) decaf_255_scalar_encode(out + 32 * i, vector->values[i]);
}
