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

#include <stdlib.h>
#include <string.h>

#include <decaf/point_255.h>

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
    decaf_255_point_t *powers; /* count × FIXED_WINDOWS, point-major */
};

static void free_table(veil_msm_table *table) {
    free(table->points);
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
    table->powers = malloc((count ? count : 1) * FIXED_WINDOWS * sizeof(decaf_255_point_t));
    if (table->points == NULL || table->powers == NULL) {
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

/* Signed radix-2^c digits in [−2^(c−1), 2^(c−1)); `windows` covers bit_length + a carry. */
static void signed_digits(const uint8_t *scalar, int c, int windows, int16_t *out) {
    int carry = 0;
    int half = 1 << (c - 1);
    for (int w = 0; w < windows; w++) {
        int digit = (int)scalar_bits(scalar, w * c, c) + carry;
        carry = digit >= half;
        out[w] = (int16_t)(digit - (carry << c));
    }
}

static int windows_for(int bit_length, int c) { return (bit_length + c - 1) / c + 1; }

/* --- the two strategies ------------------------------------------------------ */

/* Point operations each strategy needs for n terms of `bits` bits. */
static double straus_cost(size_t n, int bits) {
    int windows = windows_for(bits, STRAUS_WINDOW_BITS);
    return (double)n * (STRAUS_MULTIPLES - 1 + windows) + STRAUS_WINDOW_BITS * windows;
}

static double pippenger_cost(size_t n, int bits, int c) {
    int windows = windows_for(bits, c);
    return (double)windows * ((double)n + 2.0 * (1 << (c - 1)) + c);
}

static int best_window_bits(size_t n, int bits) {
    int best = MIN_WINDOW_BITS;
    for (int c = MIN_WINDOW_BITS + 1; c <= MAX_WINDOW_BITS; c++)
        if (pippenger_cost(n, bits, c) < pippenger_cost(n, bits, best)) best = c;
    return best;
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

static int pippenger(decaf_255_point_t out, point_ref const *points,
                     const uint8_t *const *scalars, size_t n, int bits) {
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
    for (size_t i = 0; i < n; i++) signed_digits(scalars[i], c, windows, digits + i * (size_t)windows);
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
                add_signed(buckets[b], points[i], digit < 0);
            } else if (digit < 0) {
                decaf_255_point_negate(buckets[b], points[i]);
            } else {
                decaf_255_point_copy(buckets[b], points[i]);
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
static int sum_terms(decaf_255_point_t out, point_ref const *points,
                     const uint8_t *const *scalars, size_t n, int bits) {
    if (n == 0) {
        decaf_255_point_copy(out, decaf_255_point_identity);
        return VEIL_MSM_OK;
    }
    if (straus_cost(n, bits) <= pippenger_cost(n, bits, best_window_bits(n, bits)))
        return straus(out, points, scalars, n, bits);
    return pippenger(out, points, scalars, n, bits);
}

int veil_msm(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t count,
             const veil_msm_table *table, const uint8_t *table_scalars, size_t table_count,
             size_t *bad_index) {
    *bad_index = (size_t)-1;
    if (table_count && (table == NULL || table_count > table->count)) return VEIL_MSM_BAD_TABLE;
    size_t capacity = count + table_count + 1;
    decaf_255_point_t *decoded = malloc((count ? count : 1) * sizeof(decaf_255_point_t));
    point_ref *terms = malloc(capacity * sizeof *terms);
    const uint8_t **term_scalars = malloc(capacity * sizeof *term_scalars);
    size_t *fixed_index = malloc(capacity * sizeof *fixed_index);
    int status = VEIL_MSM_NO_MEMORY;
    if (decoded == NULL || terms == NULL || term_scalars == NULL || fixed_index == NULL) goto done;
    /* Every variable point is decoded, whatever its scalar: a zero scalar
     * never hides an invalid encoding. Variable terms fill the arrays from
     * the front, fixed ones from the back. */
    size_t n_var = 0, n_fixed = 0;
    int var_bits = 0, fixed_bits = 0;
    for (size_t i = 0; i < count; i++) {
        if (decaf_255_point_decode(decoded[i], points + 32 * i, DECAF_TRUE) != DECAF_SUCCESS) {
            *bad_index = i;
            status = VEIL_MSM_INVALID_POINT;
            goto done;
        }
        const uint8_t *scalar = scalars + 32 * i;
        if (is_zero_scalar(scalar)) continue;
        terms[n_var] = decoded[i];
        term_scalars[n_var++] = scalar;
        int length = scalar_bit_length(scalar);
        if (length > var_bits) var_bits = length;
    }
    for (size_t i = 0; i < table_count; i++) {
        const uint8_t *scalar = table_scalars + 32 * i;
        if (is_zero_scalar(scalar)) continue;
        size_t slot = capacity - 1 - n_fixed++;
        terms[slot] = table->points[i];
        term_scalars[slot] = scalar;
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
                                term_scalars + first_fixed, n_fixed);
        if (status == VEIL_MSM_OK) status = sum_terms(sum, terms, term_scalars, n_var, var_bits);
        if (status == VEIL_MSM_OK) decaf_255_point_add(sum, sum, fixed_sum);
    } else {
        /* One pass over both: move the fixed terms next to the variable ones. */
        memmove(terms + n_var, terms + first_fixed, n_fixed * sizeof *terms);
        memmove(term_scalars + n_var, term_scalars + first_fixed, n_fixed * sizeof *term_scalars);
        status = sum_terms(sum, terms, term_scalars, n_var + n_fixed, all_bits);
    }
    if (status == VEIL_MSM_OK) decaf_255_point_encode(out, sum);
done:
    free(decoded);
    free(terms);
    free(term_scalars);
    free(fixed_index);
    return status;
}
