/*
 * keylink_pki: the certificate and key work shared by make_ca_cert, init_tls_iot and the
 * endpoint's registry (keylinkd). OpenSSL 3 underneath; OpenSSL objects (EVP_PKEY, X509,
 * X509_REQ) cross this interface, and the caller frees what a function hands out with the
 * matching OpenSSL free (EVP_PKEY_free, X509_free, X509_REQ_free) unless a function says
 * otherwise.
 *
 * Every function returns a kl_status (include/keylink/status.h). On failure the function
 * leaves a one-line, human-readable reason in a per-thread buffer that kl_pki_error()
 * returns; reasons never contain passphrases or key material. Output pointers are set only
 * on success. Statuses used here:
 *   KL_OK                success
 *   KL_E_ARG             a caller argument is NULL, empty, or out of range
 *   KL_E_IO              a file could not be read or written (reason names the path)
 *   KL_E_EXISTS          the output file exists and overwriting was not asked for
 *   KL_E_BAD_KEY         a key, certificate, request or name is malformed or unacceptable
 *   KL_E_AUTH_FAILED     an encrypted key did not open with the passphrase given
 *   KL_E_VERIFY_FAILED   a signature, key match, CA check or chain check failed
 *   KL_E_EXPIRED         a certificate is outside its validity period
 *   KL_E_UNSUPPORTED     a key of a type this library does not handle (only EC P-256 is)
 *   KL_E_NOT_FOUND       the certificate has no such field (kl_pki_cert_cn)
 *   KL_E_BUFFER          a caller buffer is too small (kl_pki_cert_cn)
 *   KL_E_INTERNAL        OpenSSL failed unexpectedly (out of memory...)
 *   a signer's own status, passed through by kl_pki_csr_build
 *
 * Functions are thread-safe as long as threads do not share the objects they modify.
 */
#ifndef KL_PKI_H
#define KL_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keylink/status.h"

/* PBKDF2-HMAC-SHA256 iterations used for every encrypted key this library writes. */
#define KL_PKI_PBKDF2_ITER 600000
/* Shortest passphrase kl_pki_key_write_encrypted accepts. */
#define KL_PKI_PASS_MIN 10
/* Longest passphrase any function here accepts (bytes). */
#define KL_PKI_PASS_MAX 1024
/* Default validity of a new CA certificate and of device certificates, in days. */
#define KL_PKI_CA_DAYS_DEFAULT 3650
#define KL_PKI_DEVICE_DAYS_DEFAULT 365
/* Largest validity accepted anywhere, in days (about 100 years). */
#define KL_PKI_DAYS_MAX 36500
/* Default subject of a new CA certificate. */
#define KL_PKI_CA_SUBJECT_DEFAULT "/O=keylink/CN=keylink JWT_CA"
/* Raw public key X||Y and raw signature r||s sizes for P-256. */
#define KL_PKI_RAW_PUB_LEN 64
#define KL_PKI_RAW_SIG_LEN 64
/* Hex SHA-256 fingerprint length, without and with the terminating NUL. */
#define KL_PKI_FPR_HEX_LEN 64
#define KL_PKI_FPR_HEX_SIZE 65

/* ---- errors ---------------------------------------------------------------------------- */

/* The reason for this thread's last failure in this library ("" if none); never NULL. The
 * string stays valid until the next call into the library from the same thread. */
const char *kl_pki_error(void);

/* ---- keys ------------------------------------------------------------------------------ */

/* Generate a new EC P-256 key pair into *out.
 * KL_OK, KL_E_ARG (out NULL), KL_E_INTERNAL. */
kl_status kl_pki_keygen_p256(EVP_PKEY **out);

/* Build a P-256 public key from raw X||Y (64 bytes, as the chip returns it) into *out. The
 * point is checked to lie on the curve.
 * KL_OK, KL_E_ARG, KL_E_BAD_KEY (not a valid P-256 point), KL_E_INTERNAL. */
kl_status kl_pki_pubkey_from_raw(const uint8_t xy[KL_PKI_RAW_PUB_LEN], EVP_PKEY **out);

/* Write the raw X||Y of a P-256 key (public or private; only the public half is written)
 * into xy. KL_OK, KL_E_ARG, KL_E_UNSUPPORTED (not EC P-256), KL_E_INTERNAL. */
kl_status kl_pki_pubkey_to_raw(EVP_PKEY *key, uint8_t xy[KL_PKI_RAW_PUB_LEN]);

/* Write private key `key` to `path` as encrypted PKCS#8 PEM ("ENCRYPTED PRIVATE KEY"):
 * PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256, KL_PKI_PBKDF2_ITER iterations, random
 * 16-byte salt and IV. pass/passlen: the passphrase (KL_PKI_PASS_MIN..KL_PKI_PASS_MAX
 * bytes, not copied or kept). The file is created with mode 0600 through a temporary file
 * and rename, so a reader never sees half a key; an existing file is replaced only when
 * `force` is non-zero.
 * KL_OK, KL_E_ARG (NULL, passphrase too short or long), KL_E_EXISTS, KL_E_IO,
 * KL_E_INTERNAL. */
kl_status kl_pki_key_write_encrypted(const char *path, EVP_PKEY *key, const char *pass,
                                     size_t passlen, int force);

/* Same as kl_pki_key_write_encrypted but into memory: *pem gets a NUL-terminated PEM
 * string the caller frees with free(), *pemlen its length (without the NUL).
 * KL_OK, KL_E_ARG, KL_E_INTERNAL. */
kl_status kl_pki_key_encrypt_pem(EVP_PKEY *key, const char *pass, size_t passlen, char **pem,
                                 size_t *pemlen);

/* Read an encrypted private key from `path` and decrypt it with the passphrase. Any
 * encryption OpenSSL reads is accepted (PKCS#8 or the legacy PEM form); an unencrypted key
 * is refused, because a CA key must never rest in the clear. The key must be EC P-256.
 * KL_OK, KL_E_ARG, KL_E_IO (cannot read), KL_E_BAD_KEY (no private key in the file, or it
 * is not encrypted), KL_E_AUTH_FAILED (wrong passphrase), KL_E_UNSUPPORTED (not P-256),
 * KL_E_INTERNAL. */
kl_status kl_pki_key_read_encrypted(const char *path, const char *pass, size_t passlen,
                                    EVP_PKEY **out);

/* Write an unencrypted private key as PKCS#8 PEM ("PRIVATE KEY"), mode 0600, for throwaway
 * keys only (the verification certificate's key). Same file rules as the encrypted write.
 * KL_OK, KL_E_ARG, KL_E_EXISTS, KL_E_IO, KL_E_INTERNAL. */
kl_status kl_pki_key_write_plain(const char *path, EVP_PKEY *key, int force);

/* ---- files ----------------------------------------------------------------------------- */

/* Write `len` bytes to `path` with permission bits `mode`: write a temporary file in the
 * same directory, fsync, then rename over (force) or link into place (no force, so an
 * existing file is never touched), then fsync the directory.
 * KL_OK, KL_E_ARG, KL_E_EXISTS (file exists, force zero), KL_E_IO. */
kl_status kl_pki_file_write(const char *path, const void *data, size_t len, mode_t mode, int force);

/* ---- certificates: reading and writing ------------------------------------------------- */

/* Read the first PEM certificate in `path` into *out.
 * KL_OK, KL_E_ARG, KL_E_IO, KL_E_BAD_KEY (no PEM certificate in the file). */
kl_status kl_pki_cert_read(const char *path, X509 **out);

/* Parse one certificate from a PEM buffer (first certificate found; `len` bytes, need not
 * be NUL-terminated) into *out. KL_OK, KL_E_ARG, KL_E_BAD_KEY. */
kl_status kl_pki_cert_from_pem(const char *pem, size_t len, X509 **out);

/* Parse one DER certificate (exactly `len` bytes, no trailing data) into *out.
 * KL_OK, KL_E_ARG, KL_E_BAD_KEY. */
kl_status kl_pki_cert_from_der(const uint8_t *der, size_t len, X509 **out);

/* Encode a certificate as PEM: *pem is NUL-terminated, freed by the caller with free();
 * *pemlen is its length without the NUL. KL_OK, KL_E_ARG, KL_E_INTERNAL. */
kl_status kl_pki_cert_to_pem(X509 *cert, char **pem, size_t *pemlen);

/* Encode a certificate as DER: *der freed by the caller with free().
 * KL_OK, KL_E_ARG, KL_E_INTERNAL. */
kl_status kl_pki_cert_to_der(X509 *cert, uint8_t **der, size_t *derlen);

/* Write a certificate as PEM to `path`, mode 0644, by kl_pki_file_write's rules.
 * KL_OK, KL_E_ARG, KL_E_EXISTS, KL_E_IO, KL_E_INTERNAL. */
kl_status kl_pki_cert_write(const char *path, X509 *cert, int force);

/* ---- names ----------------------------------------------------------------------------- */

/* Parse a subject in OpenSSL's "-subj" form, "/O=Example/CN=My CA" (the leading slash may be
 * left out; "\/" is a literal slash), into *out. Attribute names are the ones OpenSSL knows
 * (CN, O, OU, C, ST, L, emailAddress...); values are UTF-8, non-empty.
 * KL_OK, KL_E_ARG, KL_E_BAD_KEY (malformed, unknown attribute, empty value). */
kl_status kl_pki_name_parse(const char *subject, X509_NAME **out);

/* Copy the first commonName of `cert`'s subject into buf (NUL-terminated, UTF-8).
 * KL_OK, KL_E_ARG, KL_E_NOT_FOUND (no CN), KL_E_BUFFER (buf too small). */
kl_status kl_pki_cert_cn(X509 *cert, char *buf, size_t buflen);

/* ---- issuing --------------------------------------------------------------------------- */

/* Self-signed X.509 v3 CA certificate for `key`: subject = issuer = `subject` (see
 * kl_pki_name_parse; NULL means KL_PKI_CA_SUBJECT_DEFAULT), random positive 159-bit
 * serial, notBefore now, notAfter now + `days` (1..KL_PKI_DAYS_MAX), extensions:
 * basicConstraints CA:TRUE (critical), keyUsage keyCertSign + cRLSign (critical), subject
 * key identifier, authority key identifier (keyid). ECDSA-SHA256.
 * KL_OK, KL_E_ARG, KL_E_BAD_KEY (bad subject), KL_E_UNSUPPORTED, KL_E_INTERNAL. */
kl_status kl_pki_issue_ca(EVP_PKEY *key, const char *subject, int days, X509 **out);

/* Device certificate for the P-256 public key `pub_xy` (raw X||Y from the chip), signed by
 * `ca`/`ca_key`: v3, subject CN = `cn` (1..64 bytes), issuer = ca's subject, random
 * positive serial, notBefore now, notAfter now + `days` but never past the CA's notAfter;
 * extensions: basicConstraints CA:FALSE (critical), keyUsage digitalSignature (critical),
 * extendedKeyUsage clientAuth, subject key identifier, authority key identifier (keyid).
 * The CA is checked first with kl_pki_check_ca.
 * KL_OK, KL_E_ARG, KL_E_BAD_KEY (bad point, bad CN), KL_E_VERIFY_FAILED (ca_key does not
 * match ca, or ca is no CA), KL_E_EXPIRED (CA outside validity), KL_E_INTERNAL. */
kl_status kl_pki_issue_device(X509 *ca, EVP_PKEY *ca_key, const uint8_t pub_xy[KL_PKI_RAW_PUB_LEN],
                              const char *cn, int days, X509 **out);

/* Verification certificate for registering the CA (AWS register-ca-certificate): a new
 * P-256 key (*key_out) and a certificate with subject CN = `code` (the registration code,
 * 1..64 bytes), signed by ca/ca_key, valid `days` (clamped to the CA's notAfter), keyUsage
 * digitalSignature, basicConstraints CA:FALSE. The CA is checked with kl_pki_check_ca.
 * KL_OK, KL_E_ARG, KL_E_BAD_KEY, KL_E_VERIFY_FAILED, KL_E_EXPIRED, KL_E_INTERNAL. */
kl_status kl_pki_issue_verification(X509 *ca, EVP_PKEY *ca_key, const char *code, int days,
                                    EVP_PKEY **key_out, X509 **out);

/* ---- certificate requests (PKCS#10) with an external signer ---------------------------- */

/* The external signer: sign the 32-byte SHA-256 digest with the private key that belongs
 * to the request's public key, writing raw r||s (64 bytes) into sig. Return KL_OK or any
 * status (passed through). For init_tls_iot the signer is the chip (SIGN_VERIFY). */
typedef kl_status (*kl_pki_signer_fn)(void *ctx, const uint8_t digest[32],
                                      uint8_t sig[KL_PKI_RAW_SIG_LEN]);

/* Build a PKCS#10 request for the P-256 public key `pub_xy` with subject CN = `cn`
 * (1..64 bytes): the CertificationRequestInfo is DER-encoded, hashed with SHA-256 and
 * handed to `sign`; the returned r||s becomes the ecdsa-with-SHA256 signature. The request
 * is checked against its own public key before it is returned.
 * KL_OK, KL_E_ARG, KL_E_BAD_KEY, KL_E_VERIFY_FAILED (the signer's signature does not
 * verify), the signer's status, KL_E_INTERNAL. */
kl_status kl_pki_csr_build(const uint8_t pub_xy[KL_PKI_RAW_PUB_LEN], const char *cn,
                           kl_pki_signer_fn sign, void *ctx, X509_REQ **out);

/* Encode a request as PEM ("CERTIFICATE REQUEST"); *pem freed with free().
 * KL_OK, KL_E_ARG, KL_E_INTERNAL. */
kl_status kl_pki_csr_to_pem(X509_REQ *req, char **pem, size_t *pemlen);

/* ---- checks ---------------------------------------------------------------------------- */

/* Does private key `key` belong to `cert`? KL_OK or KL_E_VERIFY_FAILED; KL_E_ARG. */
kl_status kl_pki_key_matches_cert(X509 *cert, EVP_PKEY *key);

/* Is `cert` a CA: basicConstraints CA:TRUE and, when keyUsage is present, keyCertSign?
 * KL_OK or KL_E_VERIFY_FAILED; KL_E_ARG. */
kl_status kl_pki_cert_is_ca(X509 *cert);

/* Is `at` (0 = now) within cert's notBefore..notAfter?
 * KL_OK, KL_E_EXPIRED (expired or not yet valid; the reason says which), KL_E_ARG. */
kl_status kl_pki_cert_check_time(X509 *cert, time_t at);

/* All a signing CA needs: `cert` is a CA, valid now, and (if key is not NULL) `key` is its
 * private key. KL_OK, KL_E_VERIFY_FAILED, KL_E_EXPIRED, KL_E_ARG. */
kl_status kl_pki_check_ca(X509 *cert, EVP_PKEY *key);

/* Is `cert`'s signature made by `issuer`'s key, and is cert's issuer name issuer's subject?
 * (No time or CA checks: the registry uses it for verification certificates.)
 * KL_OK, KL_E_VERIFY_FAILED, KL_E_ARG. */
kl_status kl_pki_cert_signed_by(X509 *cert, X509 *issuer);

/* Verify `leaf` up to one of the `ntrusted` trusted certificates, using the `nuntrusted`
 * intermediates, at time `at` (0 = now), by OpenSSL's X.509 path validation (signatures,
 * validity, CA flags, key usage). Any trusted certificate ends the path (partial chains are
 * allowed, so a registered intermediate CA works); a leaf that is itself in `trusted` is
 * therefore accepted. The reason names OpenSSL's verdict.
 * KL_OK, KL_E_VERIFY_FAILED, KL_E_EXPIRED (some certificate on the path is outside its
 * validity), KL_E_ARG, KL_E_INTERNAL. */
kl_status kl_pki_verify_chain(X509 *leaf, X509 *const *trusted, size_t ntrusted,
                              X509 *const *untrusted, size_t nuntrusted, time_t at);

/* The certificate id the registry uses: lowercase hex SHA-256 of the DER encoding,
 * KL_PKI_FPR_HEX_LEN characters plus NUL into out. KL_OK, KL_E_ARG, KL_E_INTERNAL. */
kl_status kl_pki_fingerprint_hex(X509 *cert, char out[KL_PKI_FPR_HEX_SIZE]);

/* The raw X||Y of cert's public key. KL_OK, KL_E_ARG, KL_E_UNSUPPORTED (not P-256). */
kl_status kl_pki_cert_pubkey_raw(X509 *cert, uint8_t xy[KL_PKI_RAW_PUB_LEN]);

#endif
