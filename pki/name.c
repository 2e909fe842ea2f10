/* Distinguished names: the "-subj" text form and the CN of a certificate. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "pki_int.h"

#define KL_PKI_CN_MAX 64 /* ub-common-name (RFC 5280) */

/* Add one "name=value" component (value already unescaped). */
static kl_status add_component(X509_NAME *n, const char *comp)
{
    const char *eq = strchr(comp, '=');
    if (!eq || eq == comp)
        return kl_pki_fail(KL_E_BAD_KEY, "subject component '%s' is not NAME=VALUE", comp);
    char field[64];
    size_t flen = (size_t)(eq - comp);
    if (flen >= sizeof field) return kl_pki_fail(KL_E_BAD_KEY, "subject attribute name too long");
    memcpy(field, comp, flen);
    field[flen] = 0;
    if (!eq[1]) return kl_pki_fail(KL_E_BAD_KEY, "subject attribute %s has an empty value", field);
    if (OBJ_txt2nid(field) == NID_undef) {
        ERR_clear_error();
        return kl_pki_fail(KL_E_BAD_KEY, "unknown subject attribute '%s'", field);
    }
    if (!X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)eq + 1, -1, -1,
                                    0))
        return kl_pki_fail_ssl(KL_E_BAD_KEY, "bad subject attribute value");
    return KL_OK;
}

kl_status kl_pki_name_parse(const char *subject, X509_NAME **out)
{
    if (!subject || !out) return kl_pki_fail(KL_E_ARG, "no subject given");
    size_t len = strlen(subject);
    if (!len || len > 2048) return kl_pki_fail(KL_E_BAD_KEY, "subject is empty or too long");
    char *comp = malloc(len + 1);
    X509_NAME *n = X509_NAME_new();
    kl_status st = KL_OK;
    if (!comp || !n) {
        st = kl_pki_fail(KL_E_INTERNAL, "out of memory");
        goto done;
    }
    const char *p = subject;
    if (*p == '/') p++;
    size_t k = 0;
    for (;; p++) {
        if (*p == '\\' && p[1]) {
            comp[k++] = *++p;
            continue;
        }
        if (*p == '/' || !*p) {
            comp[k] = 0;
            if (k)
                st = add_component(n, comp);
            else if (*p)
                st = kl_pki_fail(KL_E_BAD_KEY, "subject has an empty component");
            if (st != KL_OK) goto done;
            k = 0;
            if (!*p) break;
            continue;
        }
        comp[k++] = *p;
    }
    if (X509_NAME_entry_count(n) == 0) {
        st = kl_pki_fail(KL_E_BAD_KEY, "subject has no attributes");
        goto done;
    }
    *out = n;
    n = NULL;
done:
    X509_NAME_free(n);
    free(comp);
    return st;
}

kl_status kl_pki_name_cn(const char *cn, X509_NAME **out)
{
    if (!cn || !out) return kl_pki_fail(KL_E_ARG, "no common name given");
    size_t len = strlen(cn);
    if (len < 1 || len > KL_PKI_CN_MAX)
        return kl_pki_fail(KL_E_BAD_KEY, "common name must be 1..%d bytes", KL_PKI_CN_MAX);
    X509_NAME *n = X509_NAME_new();
    if (!n) return kl_pki_fail(KL_E_INTERNAL, "out of memory");
    if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                    (int)len, -1, 0)) {
        X509_NAME_free(n);
        return kl_pki_fail_ssl(KL_E_BAD_KEY, "bad common name (not UTF-8?)");
    }
    *out = n;
    return KL_OK;
}

kl_status kl_pki_cert_cn(X509 *cert, char *buf, size_t buflen)
{
    if (!cert || !buf || !buflen) return kl_pki_fail(KL_E_ARG, "missing argument");
    X509_NAME *n = X509_get_subject_name(cert);
    int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
    if (i < 0) return kl_pki_fail(KL_E_NOT_FOUND, "certificate subject has no CN");
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, v);
    if (len < 0) return kl_pki_fail_ssl(KL_E_BAD_KEY, "certificate CN is not decodable");
    kl_status st = KL_OK;
    if (memchr(utf8, 0, (size_t)len))
        st = kl_pki_fail(KL_E_BAD_KEY, "certificate CN holds a NUL");
    else if ((size_t)len >= buflen)
        st = kl_pki_fail(KL_E_BUFFER, "certificate CN too long");
    else {
        memcpy(buf, utf8, (size_t)len);
        buf[len] = 0;
    }
    OPENSSL_free(utf8);
    return st;
}
