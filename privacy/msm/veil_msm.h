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

/* 1 when libdecaf decodes the encoding (the identity included), else 0. */
int veil_point_is_valid(const uint8_t encoding[32]);

/* out = Σ scalars[i]·points[i] + Σ table_scalars[k]·table[k]; 32-byte LE scalars. */
int veil_msm(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t count,
             const veil_msm_table *table, const uint8_t *table_scalars, size_t table_count,
             size_t *bad_index);

#endif
