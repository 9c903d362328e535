/* Ed25519 signatures under the cofactored rule, checked in a batch (see veil_ed25519.c). */
#ifndef VEIL_ED25519_H
#define VEIL_ED25519_H

#include <stddef.h>
#include <stdint.h>

#define VEIL_SIG_VALID 0
#define VEIL_SIG_INVALID 1 /* *bad_index: the first malformed one, or (size_t)-1 if the sum failed */
#define VEIL_SIG_NO_MEMORY 2

/* signatures: 64 bytes each; keys: 32 bytes each; message i is
 * messages[ends[i-1] .. ends[i]) (from 0 for the first); weights: 16 bytes
 * each, little-endian, random and secret for a batch (1 for a single check). */
int veil_ed25519_verify_batch(const uint8_t *signatures, const uint8_t *keys,
                              const uint8_t *messages, const size_t *ends, size_t count,
                              const uint8_t *weights, size_t *bad_index);

/* 1 when libdecaf's base is half the image of ed25519's (what verify_one assumes). */
int veil_ed25519_self_test(void);

/* One signature under the same rule, without weights: VEIL_SIG_VALID or VEIL_SIG_INVALID. */
int veil_ed25519_verify_one(const uint8_t signature[64], const uint8_t key[32],
                            const uint8_t *message, size_t length);

#endif
