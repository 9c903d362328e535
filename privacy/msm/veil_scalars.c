/*
 * Scalar vectors mod ℓ for the fixed-table terms of a multiscalar product.
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

#define MAX_ROUNDS 16 /* 2^16 entries: far above any supported proof size (2^10) */

/* Scalars mod ℓ = 2^252 + 27742317777372353535851937790883648493 as four 64-bit
 * limbs in Montgomery form (x·2^256 mod ℓ): a table entry is then one Montgomery
 * multiplication of two Montgomery-form values, where libdecaf's scalar_mul is
 * two (≈ 150 ns here); the form is left once per slot, when the vector is encoded. */
typedef struct {
    uint64_t limb[4];
} mont_scalar;

typedef unsigned __int128 wide;

static const uint64_t ELL[4] = {0x5812631a5cf5d3edULL, 0x14def9dea2f79cd6ULL, 0, 0x1000000000000000ULL};
static const uint64_t ELL_NEG_INV = 0xd2b51da312547e1bULL; /* −ℓ^(−1) mod 2^64 */
static const mont_scalar R_SQUARED = {{0xa40611e3449c0f01ULL, 0xd00e1ba768859347ULL,
                                       0xceec73d217f5be65ULL, 0x0399411b7c309a3dULL}};
static const mont_scalar PLAIN_ONE = {{1, 0, 0, 0}};

/* x − ℓ when x ≥ ℓ (x < 2ℓ < 2^254). */
static void reduce_once(mont_scalar *x) {
    uint64_t diff[4], borrow = 0;
    for (int i = 0; i < 4; i++) {
        wide d = (wide)x->limb[i] - ELL[i] - borrow;
        diff[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    if (!borrow) memcpy(x->limb, diff, sizeof diff);
}

/* a·b·2^(−256) mod ℓ, for a·b < ℓ·2^256 (any a < 2^256 times b < ℓ). */
static void mont_mul(mont_scalar *out, const mont_scalar *a, const mont_scalar *b) {
    uint64_t t[9] = {0};
    for (int i = 0; i < 4; i++) {
        uint64_t carry = 0;
        for (int j = 0; j < 4; j++) {
            wide p = (wide)a->limb[i] * b->limb[j] + t[i + j] + carry;
            t[i + j] = (uint64_t)p;
            carry = (uint64_t)(p >> 64);
        }
        t[i + 4] = carry;
    }
    for (int i = 0; i < 4; i++) {
        uint64_t m = t[i] * ELL_NEG_INV, carry = 0;
        for (int j = 0; j < 4; j++) {
            wide p = (wide)m * ELL[j] + t[i + j] + carry;
            t[i + j] = (uint64_t)p;
            carry = (uint64_t)(p >> 64);
        }
        for (int k = i + 4; carry && k < 9; k++) {
            wide p = (wide)t[k] + carry;
            t[k] = (uint64_t)p;
            carry = (uint64_t)(p >> 64);
        }
    }
    memcpy(out->limb, t + 4, 4 * sizeof(uint64_t)); /* < 2ℓ, so t[8] is 0 */
    reduce_once(out);
}

static void mont_add(mont_scalar *acc, const mont_scalar *value) {
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        wide s = (wide)acc->limb[i] + value->limb[i] + carry;
        acc->limb[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    reduce_once(acc);
}

/* Any 32 little-endian bytes (reduced here) into Montgomery form. */
static void read_scalar(mont_scalar *out, const uint8_t *bytes) {
    mont_scalar raw;
    for (int i = 0; i < 4; i++) {
        uint64_t limb = 0;
        for (int k = 7; k >= 0; k--) limb = (limb << 8) | bytes[8 * i + k];
        raw.limb[i] = limb;
    }
    mont_mul(out, &raw, &R_SQUARED);
}

struct veil_scalars {
    size_t count;
    mont_scalar *values;
};

veil_scalars *veil_scalars_new(size_t count) {
    veil_scalars *vector = malloc(sizeof *vector);
    if (vector == NULL) return NULL;
    vector->count = count;
    vector->values = calloc(count ? count : 1, sizeof(mont_scalar)); /* zero in any form */
    if (vector->values == NULL) {
        free(vector);
        return NULL;
    }
    return vector;
}

void veil_scalars_free(veil_scalars *vector) {
    if (vector != NULL) {
        free(vector->values);
        free(vector);
    }
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
    mont_scalar *table = malloc(entries * sizeof(mont_scalar));
    if (table == NULL) return VEIL_MSM_NO_MEMORY;
    read_scalar(&table[0], seed);
    for (int r = 0; r < rounds; r++) {
        mont_scalar factor;
        read_scalar(&factor, factors + 32 * r);
        size_t half = (size_t)1 << r;
        for (size_t i = 0; i < half; i++) mont_mul(&table[half + i], &table[i], &factor);
    }
    for (size_t i = 0; i < entries; i++)
        mont_add(&vector->values[first + (i / row) * stride + i % row], &table[i]);
    free(table);
    return VEIL_MSM_OK;
}

int veil_scalars_add_constant(veil_scalars *vector, size_t first, size_t count,
                              const uint8_t *value) {
    if (first > vector->count || count > vector->count - first) return VEIL_MSM_BAD_TABLE;
    mont_scalar constant;
    read_scalar(&constant, value);
    for (size_t i = first; i < first + count; i++) mont_add(&vector->values[i], &constant);
    return VEIL_MSM_OK;
}

void veil_scalars_encode(const veil_scalars *vector, uint8_t *out) {
    for (size_t i = 0; i < vector->count; i++) {
        mont_scalar plain;
        mont_mul(&plain, &vector->values[i], &PLAIN_ONE);
        for (int k = 0; k < 32; k++) out[32 * i + k] = (uint8_t)(plain.limb[k / 8] >> (8 * (k % 8)));
    }
}
