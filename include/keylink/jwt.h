/*
 * JWT/JWS ES256 made and signed in the secure element (docs/jwt.md), and the small
 * parser/verifier for compact JWS (verification runs in the chip with VERIFY_WITH_KEY).
 * libc only, no allocation: every buffer is the caller's.
 *
 * Statuses: KL_OK; KL_E_ARG (NULL, bad field); KL_E_BUFFER (out too small: nothing
 * useful in it); KL_E_PEER (a token that is not a well-formed compact JWS);
 * KL_E_UNSUPPORTED (alg is not ES256: "none", HS256, ... are refused); KL_E_VERIFY_FAILED
 * (the signature does not verify); and the chip's statuses (keylink/se.h).
 */
#ifndef KEYLINK_JWT_H
#define KEYLINK_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

struct kl_se;

/* ---- base64 (RFC 4648) ---- */

/* Encoded length of n bytes: standard with padding / base64url without. */
#define KL_B64_LEN(n) ((((n) + 2) / 3) * 4)
#define KL_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Standard base64 with '=' padding (x5c, PEM). out gets a NUL; *len excludes it. */
kl_status kl_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *len);
/* base64url without padding (JWS). out gets a NUL; *len excludes it. */
kl_status kl_base64url_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *len);
/* Strict base64url decoding: the alphabet only, no padding, no whitespace, unused low
 * bits zero (one encoding per value). KL_E_PEER for anything else. */
kl_status kl_base64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *len);
/* Strict standard base64 with padding. KL_E_PEER for anything else. */
kl_status kl_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *len);

/* ---- making a JWT ---- */

struct kl_jwt_claims {
    const char *iss, *sub, *aud, *jti; /* NULL: claim left out */
    int64_t iat;                       /* always present */
    int64_t exp;                       /* 0: left out */
    const uint8_t *nonce;              /* NULL: left out; else "nonce": base64url of it */
    size_t nonce_len;
};

/* Builds header {"alg":"ES256","typ":"JWT"[,"x5c":["<base64 of cert_der>"]]} and the
 * claims (in the order iss, sub, aud, iat, exp, jti, nonce), base64url-encodes both,
 * hashes "header.claims" with SHA-256 and has the chip sign the digest with key_id
 * (SIGN, raw r||s, which is the JWS ES256 signature form). out (cap bytes) gets the
 * compact JWS and a NUL; *len excludes the NUL. cert_der may be NULL (no x5c). */
kl_status kl_jwt_sign(struct kl_se *se, uint16_t key_id, const struct kl_jwt_claims *cl,
                      const uint8_t *cert_der, size_t cert_len, char *out, size_t cap, size_t *len);

/* ---- reading and verifying a compact JWS ---- */

struct kl_jws_parts {
    size_t signing_len; /* the signing input is the token's first signing_len bytes */
    uint8_t *header;    /* decoded protected header (JSON), in the caller's buffer */
    size_t header_len;
    uint8_t *payload; /* decoded payload, in the caller's buffer */
    size_t payload_len;
    uint8_t sig[64]; /* r||s */
};

/* Splits "h.p.s", decodes the three parts (header and payload into buf/cap), and checks
 * the header is a JSON object whose "alg" is "ES256". KL_E_PEER: not three parts, bad
 * base64url, a signature that is not 64 bytes, a header that is not an object with one
 * string "alg"; KL_E_UNSUPPORTED: another alg; KL_E_BUFFER: buf too small. */
kl_status kl_jws_parse(const char *jws, size_t n, uint8_t *buf, size_t cap,
                       struct kl_jws_parts *out);
/* Verifies a parsed token's signature in the chip (VERIFY_WITH_KEY, raw, on the SHA-256
 * of the signing input) with the public key pub = X||Y. jws/n is the same token.
 * KL_OK, KL_E_VERIFY_FAILED, KL_E_BAD_KEY (pub not on the curve) or a link status. */
kl_status kl_jws_verify(struct kl_se *se, const char *jws, size_t n, const struct kl_jws_parts *p,
                        const uint8_t pub[64]);

/* The string value of top-level member key in the JSON object json[0..n) (no escapes
 * decoded: a value containing a backslash is KL_E_UNSUPPORTED). KL_E_NOT_FOUND if the
 * key is absent; KL_E_PEER if json is not an object or the key appears twice;
 * KL_E_WRONG_TYPE if the value is not a string; KL_E_BUFFER if it does not fit cap
 * (with its NUL). */
kl_status kl_json_get_string(const uint8_t *json, size_t n, const char *key, char *out, size_t cap);

#endif
