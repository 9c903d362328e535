/* Multiscalar multiplication over ristretto255 encodings, on libdecaf (see veil_msm.c). */
#ifndef VEIL_MSM_H
#define VEIL_MSM_H

#include <stddef.h>
#include <stdint.h>

#define VEIL_MSM_OK 0
#define VEIL_MSM_INVALID_POINT 1 /* *bad_index is the first invalid encoding */
#define VEIL_MSM_NO_MEMORY 2
#define VEIL_MSM_BAD_TABLE 3 /* more table scalars than table points */

typedef struct veil_msm_table veil_msm_table;

/* Decode `count` 32-byte encodings once; NULL (and *bad_index) on an invalid one. */
veil_msm_table *veil_msm_table_new(const uint8_t *encodings, size_t count, size_t *bad_index);
void veil_msm_table_free(veil_msm_table *table);
size_t veil_msm_table_count(const veil_msm_table *table);

/* 1 when the bucket phase's own field arithmetic (veil_field.h) agrees with
 * libdecaf's point addition on this build of libdecaf, and a sum over points
 * rescaled to z = 1 by veil_msm_decoded agrees with one over their encodings;
 * else 0. */
int veil_msm_self_test(void);

/* The window c Pippenger would take for n terms of `bits` bits (returned) and
 * its number of windows (*windows), for tests and the benchmark's notes. */
int veil_msm_window_plan(size_t n, int bits, int *windows);

/* 1 when libdecaf decodes the encoding (the identity included), else 0. */
int veil_point_is_valid(const uint8_t encoding[32]);

/* out = Σ scalars[i]·points[i] + Σ table_scalars[k]·table[k]; 32-byte LE scalars. */
int veil_msm(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t count,
             const veil_msm_table *table, const uint8_t *table_scalars, size_t table_count,
             size_t *bad_index);

/* A vector of scalars mod ℓ (veil_scalars.c), all zero when made. */
typedef struct veil_scalars veil_scalars;
veil_scalars *veil_scalars_new(size_t count);
void veil_scalars_free(veil_scalars *vector);
/* Add v_i = seed·Π_{bit r of i set} factors[r] (i < 2^rounds) at slot
 * first + (i >> low_bits)·stride + (i mod 2^low_bits); VEIL_MSM_BAD_TABLE if out of range. */
int veil_scalars_add_products(veil_scalars *vector, size_t first, size_t stride, int low_bits,
                              const uint8_t *seed, const uint8_t *factors, int rounds);
/* Add `value` to slots first .. first + count − 1. */
int veil_scalars_add_constant(veil_scalars *vector, size_t first, size_t count,
                              const uint8_t *value);
/* 32 little-endian bytes per slot, reduced. */
void veil_scalars_encode(const veil_scalars *vector, uint8_t *out);

#endif
