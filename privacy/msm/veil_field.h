/*
 * Arithmetic mod p = 2^255 − 19 on libdecaf's own field layout, for the one
 * point operation libdecaf does not export: adding a point kept in affine
 * Niels form (y + x, y − x, 2d·xy) to an extended point. That costs 7 field
 * multiplications against 8 and a small one for decaf_255_point_add, and it
 * is the operation Pippenger's bucket phase does for every term and window.
 *
 * libdecaf 1.0.2 stores a gf_25519 as five unsigned 51-bit limbs
 * (value = Σ limb[i]·2^(51i)), its decoder returns z = 1 and t = x·y, and its
 * internal curve is −x² + y² = 1 + 121665·x²y² (the "imagined twist" of
 * Curve25519), so the a = −1 extended-coordinates addition of Hisil, Wong,
 * Carter and Dawson applies with 2d = 243330 (the formula decaf_255_point_add
 * uses; complete, since −1 is a square mod p and 121665 is not).
 * veil_msm_self_test checks all of that against libdecaf itself when the
 * module loads; the Python side refuses the native backend if it fails.
 *
 * Limb bounds: every function here takes limbs below 2^55 (fe_sub: a
 * subtrahend below 2^53) and fe_mul returns limbs below 2^52, which is as
 * reduced as libdecaf's own multiplication leaves them, so points written
 * here are valid input to libdecaf and the other way round.
 */
#ifndef VEIL_FIELD_H
#define VEIL_FIELD_H

#include <stdint.h>

#include <decaf/point_255.h>

_Static_assert(DECAF_WORD_BITS == 64, "veil_field.h expects 64-bit libdecaf limbs");
_Static_assert(sizeof(gf_25519_t) >= 5 * sizeof(uint64_t), "a gf_25519 holds five limbs");

#define FE_MASK ((UINT64_C(1) << 51) - 1)
#define EDWARDS_2D UINT64_C(243330) /* 2d of libdecaf's internal curve for decaf_255 */

typedef unsigned __int128 fe_wide;

/* 4p limb by limb: added before a subtraction so no limb goes negative. */
static const uint64_t FE_FOUR_P[5] = {
    (UINT64_C(1) << 53) - 76, (UINT64_C(1) << 53) - 4, (UINT64_C(1) << 53) - 4,
    (UINT64_C(1) << 53) - 4,  (UINT64_C(1) << 53) - 4,
};

static inline uint64_t *fe_limbs(gf_25519_t g) { return (uint64_t *)g->limb; }

static inline void fe_add(uint64_t h[5], const uint64_t f[5], const uint64_t g[5]) {
    for (int i = 0; i < 5; i++) h[i] = f[i] + g[i];
}

static inline void fe_sub(uint64_t h[5], const uint64_t f[5], const uint64_t g[5]) {
    for (int i = 0; i < 5; i++) h[i] = f[i] + FE_FOUR_P[i] - g[i];
}

/* Carry five wide column sums into limbs below 2^52 (2^255 ≡ 19). */
static inline void fe_carry(uint64_t h[5], fe_wide r0, fe_wide r1, fe_wide r2, fe_wide r3,
                            fe_wide r4) {
    r1 += r0 >> 51;
    r2 += r1 >> 51;
    r3 += r2 >> 51;
    r4 += r3 >> 51;
    r0 = (r0 & FE_MASK) + (r4 >> 51) * 19;
    h[1] = ((uint64_t)r1 & FE_MASK) + (uint64_t)(r0 >> 51);
    h[0] = (uint64_t)r0 & FE_MASK;
    h[2] = (uint64_t)r2 & FE_MASK;
    h[3] = (uint64_t)r3 & FE_MASK;
    h[4] = (uint64_t)r4 & FE_MASK;
}

static inline void fe_mul(uint64_t h[5], const uint64_t f[5], const uint64_t g[5]) {
    uint64_t g1 = 19 * g[1], g2 = 19 * g[2], g3 = 19 * g[3], g4 = 19 * g[4];
    fe_wide r0 = (fe_wide)f[0] * g[0] + (fe_wide)f[1] * g4 + (fe_wide)f[2] * g3 +
                 (fe_wide)f[3] * g2 + (fe_wide)f[4] * g1;
    fe_wide r1 = (fe_wide)f[0] * g[1] + (fe_wide)f[1] * g[0] + (fe_wide)f[2] * g4 +
                 (fe_wide)f[3] * g3 + (fe_wide)f[4] * g2;
    fe_wide r2 = (fe_wide)f[0] * g[2] + (fe_wide)f[1] * g[1] + (fe_wide)f[2] * g[0] +
                 (fe_wide)f[3] * g4 + (fe_wide)f[4] * g3;
    fe_wide r3 = (fe_wide)f[0] * g[3] + (fe_wide)f[1] * g[2] + (fe_wide)f[2] * g[1] +
                 (fe_wide)f[3] * g[0] + (fe_wide)f[4] * g4;
    fe_wide r4 = (fe_wide)f[0] * g[4] + (fe_wide)f[1] * g[3] + (fe_wide)f[2] * g[2] +
                 (fe_wide)f[3] * g[1] + (fe_wide)f[4] * g[0];
    fe_carry(h, r0, r1, r2, r3, r4);
}

/* h = f^(2^rounds): repeated squaring. */
static inline void fe_square_times(uint64_t h[5], const uint64_t f[5], int rounds) {
    for (int i = 0; i < 5; i++) h[i] = f[i];
    while (rounds-- > 0) fe_mul(h, h, h);
}

/* h = f^(p−2) = 1/f for f ≠ 0 (Fermat), by the chain 2^5−1, 2^10−1, …, 2^250−1.
 * Used once per batch, so its 254 squarings are not worth optimising. */
static inline void fe_invert(uint64_t h[5], const uint64_t f[5]) {
    uint64_t f11[5], f2_5[5], f2_10[5], f2_50[5], t[5], u[5];
    fe_mul(t, f, f);             /* f^2 */
    fe_square_times(u, t, 2);    /* f^8 */
    fe_mul(u, u, f);             /* f^9 */
    fe_mul(f11, t, u);           /* f^11 */
    fe_mul(t, f11, f11);         /* f^22 */
    fe_mul(f2_5, t, u);          /* f^(2^5 − 1) = f^31 */
    fe_square_times(t, f2_5, 5);
    fe_mul(f2_10, t, f2_5);      /* f^(2^10 − 1) */
    fe_square_times(t, f2_10, 10);
    fe_mul(u, t, f2_10);         /* f^(2^20 − 1) */
    fe_square_times(t, u, 20);
    fe_mul(t, t, u);             /* f^(2^40 − 1) */
    fe_square_times(t, t, 10);
    fe_mul(f2_50, t, f2_10);     /* f^(2^50 − 1) */
    fe_square_times(t, f2_50, 50);
    fe_mul(u, t, f2_50);         /* f^(2^100 − 1) */
    fe_square_times(t, u, 100);
    fe_mul(t, t, u);             /* f^(2^200 − 1) */
    fe_square_times(t, t, 50);
    fe_mul(t, t, f2_50);         /* f^(2^250 − 1) */
    fe_square_times(t, t, 5);    /* f^(2^255 − 32) */
    fe_mul(h, t, f11);           /* f^(2^255 − 21) = f^(p − 2) */
}

static inline void fe_mul_small(uint64_t h[5], const uint64_t f[5], uint64_t k) {
    fe_carry(h, (fe_wide)f[0] * k, (fe_wide)f[1] * k, (fe_wide)f[2] * k, (fe_wide)f[3] * k,
             (fe_wide)f[4] * k);
}

/* An affine point as the bucket phase adds it: y + x, y − x, 2d·x·y. */
typedef struct {
    uint64_t y_plus_x[5], y_minus_x[5], xy_2d[5];
} veil_niels;

/* The Niels form of a point with z = 1 (what decaf_255_point_decode returns). */
static inline void niels_from_affine(veil_niels *out, const decaf_255_point_t point) {
    const uint64_t *x = (const uint64_t *)point->x->limb;
    const uint64_t *y = (const uint64_t *)point->y->limb;
    fe_add(out->y_plus_x, y, x);
    fe_sub(out->y_minus_x, y, x);
    fe_mul_small(out->xy_2d, (const uint64_t *)point->t->limb, EDWARDS_2D);
}

/* acc ← acc ± point: A = (Y−X)(y−x), B = (Y+X)(y+x), C = T·2d·xy, D = 2Z, then
 * X = (B−A)(D−C), Y = (D+C)(B+A), Z = (D−C)(D+C), T = (B−A)(B+A). −point
 * swaps y ± x and negates 2d·xy, which swaps D + C and D − C. */
static inline void add_niels(decaf_255_point_t acc, const veil_niels *point, int negative) {
    uint64_t *x = fe_limbs(acc->x), *y = fe_limbs(acc->y), *z = fe_limbs(acc->z),
             *t = fe_limbs(acc->t);
    uint64_t a[5], b[5], c[5], d[5], e[5], h[5], plus[5], minus[5];
    fe_sub(e, y, x);
    fe_mul(a, e, negative ? point->y_plus_x : point->y_minus_x);
    fe_add(e, y, x);
    fe_mul(b, e, negative ? point->y_minus_x : point->y_plus_x);
    fe_mul(c, t, point->xy_2d);
    fe_add(d, z, z);
    fe_sub(e, b, a);
    fe_add(h, b, a);
    if (negative) {
        fe_sub(plus, d, c);
        fe_add(minus, d, c);
    } else {
        fe_add(plus, d, c);
        fe_sub(minus, d, c);
    }
    fe_mul(z, minus, plus);
    fe_mul(x, minus, e);
    fe_mul(y, plus, h);
    fe_mul(t, h, e);
}

#endif
