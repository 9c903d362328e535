/* A multiscalar sum over points the caller has already decoded (veil_msm.c).
 * Not part of the cffi interface: it takes libdecaf's point type. */
#ifndef VEIL_MSM_DECODED_H
#define VEIL_MSM_DECODED_H

#include <stddef.h>
#include <stdint.h>

#include <decaf/point_255.h>

/* out = Σ scalars[i]·points[i], encoded, for points with any z. The points are
 * rescaled to z = 1 in place, all with one field inversion. VEIL_MSM_OK,
 * VEIL_MSM_NO_MEMORY, or VEIL_MSM_INVALID_POINT (*bad_index) when a point is
 * not a valid libdecaf point. */
int veil_msm_decoded(uint8_t out[32], const uint8_t *scalars, decaf_255_point_t *points,
                     size_t count, size_t *bad_index);

#endif
