/*
 * Certificate checks the registry needs: thin wrappers over pki/kl_pki.h, plus the strict
 * "exactly one PEM certificate" parsing an API input needs.
 */
#ifndef KL_CLOUD_X509_CHECK_H
#define KL_CLOUD_X509_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/* Parses a PEM text that holds exactly one CERTIFICATE block (surrounding whitespace
 * allowed). Returns NULL when it is not exactly one well-formed certificate. */
X509 *kl_x509_from_pem(const char *pem);
/* Parses DER bytes; NULL when malformed or followed by extra bytes. */
X509 *kl_x509_from_der(const uint8_t *der, size_t len);
/* Hex SHA-256 of the certificate's DER (its AWS certificate id). 0 on success. */
int kl_x509_id(X509 *x, char hex[65]);
/* PEM text of x (malloc'd, canonical form). */
char *kl_x509_to_pem(X509 *x);
/* 1 when basicConstraints says CA:TRUE. */
int kl_x509_is_ca(X509 *x);
/* 1 when child names issuer as its issuer and issuer's key verifies child's signature. */
int kl_x509_signed_by(X509 *child, X509 *issuer);
/* Subject common name into buf; 0 on success, -1 when there is none or it does not fit. */
int kl_x509_cn(X509 *x, char *buf, size_t n);
/* notBefore/notAfter as unix seconds; 0 on success. */
int kl_x509_validity(X509 *x, int64_t *not_before, int64_t *not_after);
/* DER of the subject (issuer) name, malloc'd into *out; returns the length or -1. */
int kl_x509_subject_der(X509 *x, unsigned char **out);
int kl_x509_issuer_der(X509 *x, unsigned char **out);

#endif
