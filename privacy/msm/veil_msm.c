/*
 * Variable-time multiscalar multiplication over libdecaf's ristretto255
 * (decaf_255): Σ s_i·P_i for public scalars and public points.
 *
 * Verification handles no secrets, so nothing here is constant time (see
 * docs/privacy.md). Scalars are 32-byte little-endian values, any value below
 * 2^256 (the caller reduces mod ℓ; every decoded point has order ℓ after
 * encoding, so s and s mod ℓ give the same encoding anyway).
 *
 * Two strategies, picked per call by an operation-count model:
 *  - Straus (interleaved windows): a table of 1..8 multiples per point, one
 *    shared chain of doublings; cheapest for a handful of terms.
 *  - Pippenger buckets with signed digits: per window of c bits, every point
 *    is added into the bucket of its digit's magnitude (subtracted for a
 *    negative digit), then the buckets are summed by the running-sum trick.
 *
 * Fixed points (the Bulletproofs generators, G, H) live in a veil_msm_table,
 * decoded and validated once, so a call only decodes its variable points.
 */
#include "veil_msm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <decaf/point_255.h>

#include "veil_field.h"
#include "veil_msm_decoded.h"

#define STRAUS_WINDOW_BITS 4
#define STRAUS_MULTIPLES 8 /* |digit| ≤ 2^(4−1) */
#define MIN_WINDOW_BITS 2  /* signed digits need c ≥ 2 to absorb a carry */
#define MAX_WINDOW_BITS 16 /* the digit reader yields at least 17 bits */

typedef const struct decaf_255_point_s *point_ref;

/* A fixed point's window powers 2^(8k)·P, k < FIXED_WINDOWS, let its terms
 * skip the doublings: every digit of every window goes into one set of
 * buckets. That is cheaper when the fixed terms are many against few variable
 * ones (one verification: 256 generators, 22 proof points). */
#define FIXED_WINDOW_BITS 8
#define FIXED_WINDOWS 33 /* ceil(256/8) + 1: any 32-byte scalar with its last carry */

struct veil_msm_table {
    size_t count;
    decaf_255_point_t *points;
    veil_niels *niels;         /* the points in the form the bucket phase adds */
    decaf_255_point_t *powers; /* count × FIXED_WINDOWS, point-major */
};

static void free_table(veil_msm_table *table) {
    free(table->points);
    free(table->niels);
    free(table->powers);
    free(table);
}

veil_msm_table *veil_msm_table_new(const uint8_t *encodings, size_t count,
                                   size_t *bad_index) {
    *bad_index = (size_t)-1;
    veil_msm_table *table = calloc(1, sizeof *table);
    if (table == NULL) return NULL;
    table->count = count;
    table->points = malloc((count ? count : 1) * sizeof(decaf_255_point_t));
    table->niels = malloc((count ? count : 1) * sizeof(veil_niels));
    table->powers = malloc((count ? count : 1) * FIXED_WINDOWS * sizeof(decaf_255_point_t));
    if (table->points == NULL || table->niels == NULL || table->powers == NULL) {
        free_table(table);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (decaf_255_point_decode(table->points[i], encodings + 32 * i, DECAF_TRUE) !=
            DECAF_SUCCESS) {
            free_table(table);
            *bad_index = i;
            return NULL;
        }
        niels_from_affine(&table->niels[i], table->points[i]);
        decaf_255_point_t *row = table->powers + i * FIXED_WINDOWS;
        decaf_255_point_copy(row[0], table->points[i]);
        for (int k = 1; k < FIXED_WINDOWS; k++) {
            decaf_255_point_double(row[k], row[k - 1]);
            for (int d = 1; d < FIXED_WINDOW_BITS; d++) decaf_255_point_double(row[k], row[k]);
        }
    }
    return table;
}

void veil_msm_table_free(veil_msm_table *table) {
    if (table != NULL) free_table(table);
}

size_t veil_msm_table_count(const veil_msm_table *table) { return table->count; }

int veil_point_is_valid(const uint8_t encoding[32]) {
    decaf_255_point_t point;
    return decaf_255_point_decode(point, encoding, DECAF_TRUE) == DECAF_SUCCESS;
}

/* --- scalars ---------------------------------------------------------------- */

static int is_zero_scalar(const uint8_t *scalar) {
    uint8_t any = 0;
    for (int k = 0; k < 32; k++) any |= scalar[k];
    return any == 0;
}

/* Index of the highest set bit plus one (0 for zero). */
static int scalar_bit_length(const uint8_t *scalar) {
    for (int k = 31; k >= 0; k--) {
        if (scalar[k]) {
            int bits = 8;
            while (!(scalar[k] & (1u << (bits - 1)))) bits--;
            return 8 * k + bits;
        }
    }
    return 0;
}

/* `width` bits of the scalar starting at bit `start` (bits past 255 read as 0). */
static uint32_t scalar_bits(const uint8_t *scalar, int start, int width) {
    uint32_t window = 0;
    int byte = start / 8;
    for (int k = 0; k < 3 && byte + k < 32; k++) window |= (uint32_t)scalar[byte + k] << (8 * k);
    return (window >> (start % 8)) & ((1u << width) - 1);
}

/* Signed radix-2^c digits in [−2^(c−1), 2^(c−1)]: a digit carries only above
 * 2^(c−1) (a digit of exactly 2^(c−1) still has a bucket), so the top window
 * absorbs the last carry whenever bit_length ≤ c·windows − 1. */
static void signed_digits(const uint8_t *scalar, int c, int windows, int16_t *out) {
    int carry = 0;
    int half = 1 << (c - 1);
    for (int w = 0; w < windows; w++) {
        int digit = (int)scalar_bits(scalar, w * c, c) + carry;
        carry = digit > half;
        out[w] = (int16_t)(digit - (carry << c));
    }
}

/* Windows that hold a bit_length-bit scalar and its last carry (see signed_digits). */
static int windows_for(int bit_length, int c) { return bit_length / c + 1; }

/* --- the two strategies ------------------------------------------------------ */

/* Relative costs of libdecaf's point_add (1.0), its doubling and add_niels,
 * measured on the dev machine (≈ 267, 250 and 177 ns): they pick the strategy
 * and Pippenger's window, nothing else. */
#define DOUBLE_COST 0.93
#define NIELS_ADD_COST 0.66

/* Point operations each strategy needs for n terms of `bits` bits. */
static double straus_cost(size_t n, int bits) {
    int windows = windows_for(bits, STRAUS_WINDOW_BITS);
    return (double)n * (STRAUS_MULTIPLES - 1 + windows) +
           DOUBLE_COST * STRAUS_WINDOW_BITS * windows;
}

/* Per window: every term not first into its bucket is an add_niels (about
 * `buckets·(1 − e^(−n/buckets))` buckets are hit), the running sum adds each
 * hit bucket and then the running total once per bucket below the top one,
 * and c doublings shift the result. */
static double pippenger_cost(size_t n, int bits, int c) {
    int windows = windows_for(bits, c);
    double buckets = (double)(1 << (c - 1));
    double hit = buckets * (1.0 - exp(-(double)n / buckets));
    return (double)windows * (NIELS_ADD_COST * ((double)n - hit) + hit + buckets + DOUBLE_COST * c);
}

static int best_window_bits(size_t n, int bits) {
    int best = MIN_WINDOW_BITS;
    for (int c = MIN_WINDOW_BITS + 1; c <= MAX_WINDOW_BITS; c++)
        if (pippenger_cost(n, bits, c) < pippenger_cost(n, bits, best)) best = c;
    return best;
}

int veil_msm_window_plan(size_t n, int bits, int *windows) {
    int c = best_window_bits(n, bits);
    *windows = windows_for(bits, c);
    return c;
}

static void add_signed(decaf_255_point_t acc, const decaf_255_point_t point, int negative) {
    if (negative)
        decaf_255_point_sub(acc, acc, point);
    else
        decaf_255_point_add(acc, acc, point);
}

static int straus(decaf_255_point_t out, point_ref const *points,
                  const uint8_t *const *scalars, size_t n, int bits) {
    int windows = windows_for(bits, STRAUS_WINDOW_BITS);
    decaf_255_point_t *multiples = malloc(n * STRAUS_MULTIPLES * sizeof(decaf_255_point_t));
    int16_t *digits = malloc(n * (size_t)windows * sizeof(int16_t));
    if (multiples == NULL || digits == NULL) {
        free(multiples);
        free(digits);
        return VEIL_MSM_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        decaf_255_point_t *row = multiples + i * STRAUS_MULTIPLES;
        decaf_255_point_copy(row[0], points[i]);
        decaf_255_point_double(row[1], points[i]);
        for (int k = 2; k < STRAUS_MULTIPLES; k++) decaf_255_point_add(row[k], row[k - 1], row[0]);
        signed_digits(scalars[i], STRAUS_WINDOW_BITS, windows, digits + i * (size_t)windows);
    }
    decaf_255_point_copy(out, decaf_255_point_identity);
    for (int w = windows - 1; w >= 0; w--) {
        for (int k = 0; k < STRAUS_WINDOW_BITS; k++) decaf_255_point_double(out, out);
        for (size_t i = 0; i < n; i++) {
            int digit = digits[i * (size_t)windows + w];
            if (digit) add_signed(out, multiples[i * STRAUS_MULTIPLES + abs(digit) - 1], digit < 0);
        }
    }
    free(multiples);
    free(digits);
    return VEIL_MSM_OK;
}

/* Σ buckets[b]·(b+1) by a running sum from the top bucket down; false when all are empty. */
static int sum_buckets(decaf_255_point_t total, decaf_255_point_t *buckets,
                       const uint8_t *used, int count) {
    decaf_255_point_t running;
    int have_running = 0, have_total = 0;
    for (int b = count - 1; b >= 0; b--) {
        if (used[b]) {
            if (have_running)
                decaf_255_point_add(running, running, buckets[b]);
            else
                decaf_255_point_copy(running, buckets[b]);
            have_running = 1;
        }
        if (have_running) {
            if (have_total)
                decaf_255_point_add(total, total, running);
            else
                decaf_255_point_copy(total, running);
            have_total = 1;
        }
    }
    return have_total;
}

/* The terms of one pass: decoded points (z = 1), their Niels forms, scalars. */
typedef struct {
    point_ref *points;
    const veil_niels **niels;
    const uint8_t **scalars;
} term_arrays;

static int pippenger(decaf_255_point_t out, const term_arrays *terms, size_t n, int bits) {
    int c = best_window_bits(n, bits);
    int windows = windows_for(bits, c);
    int bucket_count = 1 << (c - 1);
    decaf_255_point_t *buckets = malloc((size_t)bucket_count * sizeof(decaf_255_point_t));
    uint8_t *used = malloc((size_t)bucket_count);
    int16_t *digits = malloc(n * (size_t)windows * sizeof(int16_t));
    if (buckets == NULL || used == NULL || digits == NULL) {
        free(buckets);
        free(used);
        free(digits);
        return VEIL_MSM_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++)
        signed_digits(terms->scalars[i], c, windows, digits + i * (size_t)windows);
    int have_out = 0;
    decaf_255_point_t window_sum;
    for (int w = windows - 1; w >= 0; w--) {
        if (have_out)
            for (int k = 0; k < c; k++) decaf_255_point_double(out, out);
        memset(used, 0, (size_t)bucket_count);
        for (size_t i = 0; i < n; i++) {
            int digit = digits[i * (size_t)windows + w];
            if (digit == 0) continue;
            int b = abs(digit) - 1;
            if (used[b]) {
                add_niels(buckets[b], terms->niels[i], digit < 0);
            } else if (digit < 0) {
                decaf_255_point_negate(buckets[b], terms->points[i]);
            } else {
                decaf_255_point_copy(buckets[b], terms->points[i]);
            }
            used[b] = 1;
        }
        if (sum_buckets(window_sum, buckets, used, bucket_count)) {
            if (have_out)
                decaf_255_point_add(out, out, window_sum);
            else
                decaf_255_point_copy(out, window_sum);
            have_out = 1;
        }
    }
    if (!have_out) decaf_255_point_copy(out, decaf_255_point_identity);
    free(buckets);
    free(used);
    free(digits);
    return VEIL_MSM_OK;
}

/* --- fixed terms through their window powers -------------------------------- */

static double fixed_windowed_cost(size_t n) {
    return n ? (double)n * FIXED_WINDOWS + 2.0 * (1 << (FIXED_WINDOW_BITS - 1)) : 0.0;
}

/* Σ scalars[k]·table[index[k]]: digit w of term k is added as digit·2^(8w)·P. */
static int fixed_windowed(decaf_255_point_t out, const veil_msm_table *table,
                          const size_t *index, const uint8_t *const *scalars, size_t n) {
    int bucket_count = 1 << (FIXED_WINDOW_BITS - 1);
    decaf_255_point_t *buckets = malloc((size_t)bucket_count * sizeof(decaf_255_point_t));
    uint8_t *used = calloc((size_t)bucket_count, 1);
    if (buckets == NULL || used == NULL) {
        free(buckets);
        free(used);
        return VEIL_MSM_NO_MEMORY;
    }
    int16_t digits[FIXED_WINDOWS];
    for (size_t k = 0; k < n; k++) {
        signed_digits(scalars[k], FIXED_WINDOW_BITS, FIXED_WINDOWS, digits);
        const decaf_255_point_t *row = table->powers + index[k] * FIXED_WINDOWS;
        for (int w = 0; w < FIXED_WINDOWS; w++) {
            int digit = digits[w];
            if (digit == 0) continue;
            int b = abs(digit) - 1;
            if (used[b]) {
                add_signed(buckets[b], row[w], digit < 0);
            } else if (digit < 0) {
                decaf_255_point_negate(buckets[b], row[w]);
            } else {
                decaf_255_point_copy(buckets[b], row[w]);
            }
            used[b] = 1;
        }
    }
    if (!sum_buckets(out, buckets, used, bucket_count))
        decaf_255_point_copy(out, decaf_255_point_identity);
    free(buckets);
    free(used);
    return VEIL_MSM_OK;
}

/* --- the entry point --------------------------------------------------------- */

static double best_cost(size_t n, int bits) {
    if (n == 0) return 0.0;
    double pippenger = pippenger_cost(n, bits, best_window_bits(n, bits));
    double straus_ops = straus_cost(n, bits);
    return straus_ops < pippenger ? straus_ops : pippenger;
}

/* Σ over n terms by the cheaper of Straus and Pippenger (the identity for none). */
static int sum_terms(decaf_255_point_t out, const term_arrays *terms, size_t n, int bits) {
    if (n == 0) {
        decaf_255_point_copy(out, decaf_255_point_identity);
        return VEIL_MSM_OK;
    }
    if (straus_cost(n, bits) <= pippenger_cost(n, bits, best_window_bits(n, bits)))
        return straus(out, terms->points, terms->scalars, n, bits);
    return pippenger(out, terms, n, bits);
}

/* Move `count` entries from `from` down to `to` in every array (fixed terms next to variable ones). */
static void move_terms(const term_arrays *terms, size_t to, size_t from, size_t count) {
    memmove(terms->points + to, terms->points + from, count * sizeof *terms->points);
    memmove(terms->niels + to, terms->niels + from, count * sizeof *terms->niels);
    memmove(terms->scalars + to, terms->scalars + from, count * sizeof *terms->scalars);
}

/* out = Σ scalars[i]·decoded[i] + Σ table_scalars[k]·table[k], for variable
 * points already decoded with z = 1; decoded_niels is count entries of scratch. */
static int msm_over_decoded(uint8_t out[32], const uint8_t *scalars, decaf_255_point_t *decoded,
                            veil_niels *decoded_niels, size_t count, const veil_msm_table *table,
                            const uint8_t *table_scalars, size_t table_count) {
    size_t capacity = count + table_count + 1;
    term_arrays terms = {
        malloc(capacity * sizeof *terms.points),
        malloc(capacity * sizeof *terms.niels),
        malloc(capacity * sizeof *terms.scalars),
    };
    size_t *fixed_index = malloc(capacity * sizeof *fixed_index);
    int status = VEIL_MSM_NO_MEMORY;
    if (terms.points == NULL || terms.niels == NULL || terms.scalars == NULL || fixed_index == NULL)
        goto done;
    /* Variable terms fill the arrays from the front, fixed ones from the back. */
    size_t n_var = 0, n_fixed = 0;
    int var_bits = 0, fixed_bits = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *scalar = scalars + 32 * i;
        if (is_zero_scalar(scalar)) continue;
        niels_from_affine(&decoded_niels[i], decoded[i]);
        terms.points[n_var] = decoded[i];
        terms.niels[n_var] = &decoded_niels[i];
        terms.scalars[n_var++] = scalar;
        int length = scalar_bit_length(scalar);
        if (length > var_bits) var_bits = length;
    }
    for (size_t i = 0; i < table_count; i++) {
        const uint8_t *scalar = table_scalars + 32 * i;
        if (is_zero_scalar(scalar)) continue;
        size_t slot = capacity - 1 - n_fixed++;
        terms.points[slot] = table->points[i];
        terms.niels[slot] = &table->niels[i];
        terms.scalars[slot] = scalar;
        fixed_index[slot] = i;
        int length = scalar_bit_length(scalar);
        if (length > fixed_bits) fixed_bits = length;
    }
    decaf_255_point_t sum;
    size_t first_fixed = capacity - n_fixed;
    int all_bits = var_bits > fixed_bits ? var_bits : fixed_bits;
    double together = best_cost(n_var + n_fixed, all_bits);
    double apart = fixed_windowed_cost(n_fixed) + best_cost(n_var, var_bits) + 1.0;
    if (n_fixed && apart < together) {
        decaf_255_point_t fixed_sum;
        status = fixed_windowed(fixed_sum, table, fixed_index + first_fixed,
                                terms.scalars + first_fixed, n_fixed);
        if (status == VEIL_MSM_OK) status = sum_terms(sum, &terms, n_var, var_bits);
        if (status == VEIL_MSM_OK) decaf_255_point_add(sum, sum, fixed_sum);
    } else {
        move_terms(&terms, n_var, first_fixed, n_fixed);
        status = sum_terms(sum, &terms, n_var + n_fixed, all_bits);
    }
    if (status == VEIL_MSM_OK) decaf_255_point_encode(out, sum);
done:
    free(terms.points);
    free(terms.niels);
    free(terms.scalars);
    free(fixed_index);
    return status;
}

int veil_msm(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t count,
             const veil_msm_table *table, const uint8_t *table_scalars, size_t table_count,
             size_t *bad_index) {
    *bad_index = (size_t)-1;
    if (table_count && (table == NULL || table_count > table->count)) return VEIL_MSM_BAD_TABLE;
    decaf_255_point_t *decoded = malloc((count ? count : 1) * sizeof(decaf_255_point_t));
    veil_niels *decoded_niels = malloc((count ? count : 1) * sizeof(veil_niels));
    int status = VEIL_MSM_NO_MEMORY;
    if (decoded == NULL || decoded_niels == NULL) goto done;
    /* Every variable point is decoded, whatever its scalar: a zero scalar
     * never hides an invalid encoding. */
    for (size_t i = 0; i < count; i++) {
        if (decaf_255_point_decode(decoded[i], points + 32 * i, DECAF_TRUE) != DECAF_SUCCESS) {
            *bad_index = i;
            status = VEIL_MSM_INVALID_POINT;
            goto done;
        }
    }
    status = msm_over_decoded(out, scalars, decoded, decoded_niels, count, table, table_scalars,
                              table_count);
done:
    free(decoded);
    free(decoded_niels);
    return status;
}

/* Rescale every point to z = 1 with one inversion (Montgomery's trick):
 * prefix[i] = z_0 ⋯ z_{i−1}, then walking back from 1/(z_0 ⋯ z_{n−1}),
 * 1/z_i = prefix[i] · 1/(z_0 ⋯ z_i). 3 multiplications a point, against an
 * inverse square root each for an encode and decode round trip. x, y and
 * t = xy/z each take the factor. A point libdecaf does not call valid
 * afterwards (z = 0 is never one) fails the call. */
static int normalise(decaf_255_point_t *points, size_t count, size_t *bad_index) {
    uint64_t(*prefix)[5] = malloc((count ? count : 1) * sizeof *prefix);
    if (prefix == NULL) return VEIL_MSM_NO_MEMORY;
    uint64_t product[5] = {1, 0, 0, 0, 0}, inverse[5], z_inverse[5];
    for (size_t i = 0; i < count; i++) {
        memcpy(prefix[i], product, sizeof product);
        fe_mul(product, product, fe_limbs(points[i]->z));
    }
    fe_invert(inverse, product);
    for (size_t i = count; i-- > 0;) {
        uint64_t *x = fe_limbs(points[i]->x), *y = fe_limbs(points[i]->y),
                 *z = fe_limbs(points[i]->z), *t = fe_limbs(points[i]->t);
        fe_mul(z_inverse, inverse, prefix[i]);
        fe_mul(inverse, inverse, z);
        fe_mul(x, x, z_inverse);
        fe_mul(y, y, z_inverse);
        fe_mul(t, t, z_inverse);
        z[0] = 1;
        z[1] = z[2] = z[3] = z[4] = 0;
    }
    free(prefix);
    for (size_t i = 0; i < count; i++) {
        if (decaf_255_point_valid(points[i]) != DECAF_TRUE) {
            *bad_index = i;
            return VEIL_MSM_INVALID_POINT;
        }
    }
    return VEIL_MSM_OK;
}

int veil_msm_decoded(uint8_t out[32], const uint8_t *scalars, decaf_255_point_t *points,
                     size_t count, size_t *bad_index) {
    *bad_index = (size_t)-1;
    veil_niels *niels = malloc((count ? count : 1) * sizeof(veil_niels));
    if (niels == NULL) return VEIL_MSM_NO_MEMORY;
    int status = normalise(points, count, bad_index);
    if (status == VEIL_MSM_OK)
        status = msm_over_decoded(out, scalars, points, niels, count, NULL, NULL, 0);
    free(niels);
    return status;
}

/* --- the self-test ------------------------------------------------------------ */

/* veil_msm_decoded (fe_invert, the shared rescaling) on points with z ≠ 1,
 * against veil_msm over their encodings, which libdecaf decodes to z = 1. */
static int decoded_sum_matches(decaf_255_point_t points[4]) {
    decaf_255_point_t sums[3];
    uint8_t encodings[96], scalars[96] = {0}, got[32], want[32];
    size_t bad;
    decaf_255_point_add(sums[0], points[0], points[1]);
    decaf_255_point_add(sums[1], sums[0], points[2]);
    decaf_255_point_double(sums[2], points[3]);
    for (int i = 0; i < 3; i++) {
        decaf_255_point_encode(encodings + 32 * i, sums[i]);
        scalars[32 * i] = (uint8_t)(5 + i);
        scalars[32 * i + 9] = (uint8_t)(77 * i + 1);
    }
    if (veil_msm(want, scalars, encodings, 3, NULL, NULL, 0, &bad) != VEIL_MSM_OK) return 0;
    if (veil_msm_decoded(got, scalars, sums, 3, &bad) != VEIL_MSM_OK) return 0;
    return memcmp(got, want, sizeof got) == 0;
}

/* The bucket phase adds with veil_field.h's own arithmetic on libdecaf's point
 * layout; this checks, against libdecaf's own addition, every assumption that
 * makes (five 51-bit limbs, z = 1 after decoding, the curve's d). */
int veil_msm_self_test(void) {
    decaf_255_point_t points[4], acc, expected;
    uint8_t encoding[32], scalar_bytes[32] = {0};
    decaf_255_scalar_t scalar;
    for (int i = 0; i < 4; i++) {
        scalar_bytes[0] = (uint8_t)(3 + 40 * i);
        scalar_bytes[17] = (uint8_t)(91 * i);
        decaf_255_scalar_decode_long(scalar, scalar_bytes, sizeof scalar_bytes);
        decaf_255_point_scalarmul(expected, decaf_255_point_base, scalar);
        decaf_255_point_encode(encoding, expected);
        if (decaf_255_point_decode(points[i], encoding, DECAF_FALSE) != DECAF_SUCCESS) return 0;
        const uint64_t *z = fe_limbs(points[i]->z);
        if (z[0] != 1 || z[1] || z[2] || z[3] || z[4]) return 0;
    }
    /* Sums of sums (z ≠ 1), a point plus itself, and down to the identity. */
    decaf_255_point_copy(acc, points[0]);
    decaf_255_point_copy(expected, points[0]);
    for (int round = 0; round < 12; round++) {
        int k = round % 4, negative = (round / 4) % 2;
        veil_niels niels;
        niels_from_affine(&niels, points[k]);
        add_niels(acc, &niels, negative);
        add_signed(expected, points[k], negative);
        if (decaf_255_point_eq(acc, expected) != DECAF_TRUE) return 0;
    }
    veil_niels first;
    niels_from_affine(&first, points[0]);
    decaf_255_point_copy(acc, points[0]);
    add_niels(acc, &first, 1);
    if (decaf_255_point_eq(acc, decaf_255_point_identity) != DECAF_TRUE) return 0;
    return decoded_sum_matches(points);
}
