/*
 * Ed25519 signatures checked many at a time (docs/privacy.md, "Signatures
 * checked in batches").
 *
 * The rule (ledger/signature_rule.py is its executable spec): a signature
 * R || s by key A on message M is valid when
 *   - s < ℓ;
 *   - R and A are canonical encodings (y < p) of curve points, neither of
 *     small order;
 *   - [8](s·B − k·A − R) = O, where k = SHA-512(R || A || M) mod ℓ.
 * It is libsodium's rule except for the last line, where libsodium checks
 * s·B − k·A = R exactly. The two differ only for an R (or A) with a
 * torsion component, which only the key's holder can make: every signature
 * libsodium accepts passes here.
 *
 * Why cofactored: the cofactored equation holds for a sum. With random
 * 128-bit weights z_i,
 *   (Σ z_i·s_i)·B − Σ z_i·R_i − Σ_A (Σ_{i: A_i = A} z_i·k_i)·A = O   (mod torsion)
 * holds for a batch in which one signature fails with probability at most
 * 2^-128, and always when all pass. One multiscalar multiplication replaces
 * a double-scalar multiplication per signature; a key repeated in the batch
 * is one term.
 *
 * libdecaf's eddsa decoding multiplies by 2 and maps into ristretto255: a
 * homomorphism whose kernel is exactly the torsion, so "= O (mod torsion)"
 * becomes "= identity" in decaf_255, and "of small order" becomes "decodes
 * to the identity".
 */
#include "veil_ed25519.h"

#include <stdlib.h>
#include <string.h>

#include <decaf/ed255.h>
#include <decaf/point_255.h>
#include <decaf/sha512.h>

#include "veil_msm.h"
#include "veil_msm_decoded.h"

/* The ed25519 base point B, as RFC 8032 encodes it. */
static const uint8_t BASE_ENCODING[32] = {
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};

/* y < p = 2^255 − 19, the sign bit aside. */
static int is_canonical_y(const uint8_t encoding[32]) {
    if ((encoding[31] & 0x7f) != 0x7f) return 1;
    for (int i = 30; i > 0; i--)
        if (encoding[i] != 0xff) return 1;
    return encoding[0] < 0xed;
}

/* The point's image in decaf_255; 0 unless canonical, on the curve and not of small order. */
static int decode_point(decaf_255_point_t out, const uint8_t encoding[32]) {
    if (!is_canonical_y(encoding)) return 0;
    if (decaf_255_point_decode_like_eddsa_and_mul_by_ratio(out, encoding) != DECAF_SUCCESS)
        return 0;
    return decaf_255_point_eq(out, decaf_255_point_identity) != DECAF_TRUE;
}

static void challenge(decaf_255_scalar_t out, const uint8_t *signature, const uint8_t *key,
                      const uint8_t *message, size_t length) {
    uint8_t digest[64];
    decaf_sha512_ctx_t hash;
    decaf_sha512_init(hash);
    decaf_sha512_update(hash, signature, 32);
    decaf_sha512_update(hash, key, 32);
    decaf_sha512_update(hash, message, length);
    decaf_sha512_final(hash, digest, sizeof digest);
    decaf_sha512_destroy(hash);
    decaf_255_scalar_decode_long(out, digest, sizeof digest);
}

/* decaf's own base D is half of φ(B), where φ is the eddsa decoding above: so
 * s·φ(B) = (2s)·D, and libdecaf's precomputed tables for D serve one check. */
int veil_ed25519_self_test(void) {
    decaf_255_point_t image, twice;
    if (decaf_255_point_decode_like_eddsa_and_mul_by_ratio(image, BASE_ENCODING) != DECAF_SUCCESS)
        return 0;
    decaf_255_point_double(twice, decaf_255_point_base);
    return decaf_255_point_eq(image, twice) == DECAF_TRUE;
}

int veil_ed25519_verify_one(const uint8_t signature[64], const uint8_t key[32],
                            const uint8_t *message, size_t length) {
    decaf_255_point_t r, a, combination;
    decaf_255_scalar_t s, k;
    if (decaf_255_scalar_decode(s, signature + 32) != DECAF_SUCCESS) return VEIL_SIG_INVALID;
    if (!decode_point(r, signature) || !decode_point(a, key)) return VEIL_SIG_INVALID;
    challenge(k, signature, key, message, length);
    /* (2s)·D − k·A = s·B − k·A, to compare with R (all mod torsion). */
    decaf_255_scalar_add(s, s, s);
    decaf_255_scalar_sub(k, decaf_255_scalar_zero, k);
    decaf_255_base_double_scalarmul_non_secret(combination, s, a, k);
    return decaf_255_point_eq(combination, r) == DECAF_TRUE ? VEIL_SIG_VALID : VEIL_SIG_INVALID;
}

int veil_ed25519_verify_batch(const uint8_t *signatures, const uint8_t *keys,
                              const uint8_t *messages, const size_t *ends, size_t count,
                              const uint8_t *weights, size_t *bad_index) {
    *bad_index = (size_t)-1;
    if (count == 0) return VEIL_SIG_VALID;
    /* Terms: count R's, up to count distinct keys, and B. */
    size_t capacity = 2 * count + 1;
    decaf_255_point_t *points = malloc(capacity * sizeof(decaf_255_point_t));
    uint8_t *scalars = malloc(32 * capacity);
    decaf_255_scalar_t *key_scalars = malloc(count * sizeof(decaf_255_scalar_t));
    size_t *key_first = malloc(count * sizeof(size_t)); /* a distinct key's first index */
    int status = VEIL_SIG_NO_MEMORY;
    if (points == NULL || scalars == NULL || key_scalars == NULL || key_first == NULL) goto done;

    decaf_255_scalar_t s, k, z, product, base_scalar;
    decaf_255_scalar_copy(base_scalar, decaf_255_scalar_zero);
    size_t distinct = 0, start = 0;
    status = VEIL_SIG_INVALID;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *signature = signatures + 64 * i, *key = keys + 32 * i;
        size_t end = ends[i];
        if (end < start) goto bad;
        if (decaf_255_scalar_decode(s, signature + 32) != DECAF_SUCCESS) goto bad;
        if (!decode_point(points[i], signature)) goto bad;
        challenge(k, signature, key, messages + start, end - start);
        start = end;
        decaf_255_scalar_decode_long(z, weights + 16 * i, 16);
        /* −z·R */
        decaf_255_scalar_sub(product, decaf_255_scalar_zero, z);
        decaf_255_scalar_encode(scalars + 32 * i, product);
        /* + z·s on B */
        decaf_255_scalar_mul(product, z, s);
        decaf_255_scalar_add(base_scalar, base_scalar, product);
        /* − z·k on A, one term per distinct key */
        decaf_255_scalar_mul(product, z, k);
        size_t slot = 0;
        while (slot < distinct && memcmp(keys + 32 * key_first[slot], key, 32) != 0) slot++;
        if (slot == distinct) {
            if (!decode_point(points[count + slot], key)) goto bad;
            key_first[slot] = i;
            decaf_255_scalar_copy(key_scalars[slot], decaf_255_scalar_zero);
            distinct++;
        }
        decaf_255_scalar_sub(key_scalars[slot], key_scalars[slot], product);
        continue;
    bad:
        *bad_index = i;
        goto done;
    }
    for (size_t slot = 0; slot < distinct; slot++)
        decaf_255_scalar_encode(scalars + 32 * (count + slot), key_scalars[slot]);
    size_t terms = count + distinct;
    if (decaf_255_point_decode_like_eddsa_and_mul_by_ratio(points[terms], BASE_ENCODING) !=
        DECAF_SUCCESS) {
        status = VEIL_SIG_NO_MEMORY; /* cannot happen: libdecaf refuses its own base */
        goto done;
    }
    decaf_255_scalar_encode(scalars + 32 * terms, base_scalar);
    terms++;
    /* The decoded points go in as they are (any z): one shared inversion
     * instead of a ristretto255 encode and decode each. */
    uint8_t sum[32];
    size_t msm_bad;
    int msm = veil_msm_decoded(sum, scalars, points, terms, &msm_bad);
    if (msm == VEIL_MSM_NO_MEMORY) {
        status = VEIL_SIG_NO_MEMORY;
        goto done;
    }
    static const uint8_t identity[32] = {0};
    status = msm == VEIL_MSM_OK && memcmp(sum, identity, 32) == 0 ? VEIL_SIG_VALID
                                                                   : VEIL_SIG_INVALID;
done:
    free(points);
    free(scalars);
    free(key_scalars);
    free(key_first);
    return status;
}
