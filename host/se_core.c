/* Device handle: transport table, open by URI, and the one command path every
 * wrapper goes through (frame, send, receive, check, unwrap). */
#include <stdlib.h>
#include <string.h>

#include "keylink/se.h"

#define KL_TRANSPORT_SLOTS 4

#ifdef KL_HAVE_TRANSPORT_UNIX
static const struct kl_transport_ops *slots[KL_TRANSPORT_SLOTS] = {&kl_transport_unix};
#else
static const struct kl_transport_ops *slots[KL_TRANSPORT_SLOTS];
#endif

kl_status kl_transport_register(const struct kl_transport_ops *ops)
{
    if (!ops || ops->version != KL_TRANSPORT_VERSION || !ops->scheme || !ops->open ||
        !ops->transceive || !ops->close)
        return KL_E_ARG;
    for (size_t i = 0; i < KL_TRANSPORT_SLOTS; i++) {
        if (!slots[i]) {
            slots[i] = ops;
            return KL_OK;
        }
        if (!strcmp(slots[i]->scheme, ops->scheme)) return KL_OK;
    }
    return KL_E_BUFFER;
}

static void reset_handle(struct kl_se *se)
{
    se->ops = NULL;
    se->tp_fd = -1;
    se->tp_ctx = NULL;
    se->timeout_ms = KL_SE_DEFAULT_TIMEOUT_MS;
    se->sc_open = 0;
    se->sc_hook = NULL;
    se->sc_ctx = NULL;
    memset(se->sc_state, 0, sizeof se->sc_state);
}

kl_status kl_se_open_transport(struct kl_se *se, const struct kl_transport_ops *ops,
                               const char *arg)
{
    if (!se || !ops || !arg) return KL_E_ARG;
    if (ops->version != KL_TRANSPORT_VERSION || !ops->open || !ops->transceive || !ops->close)
        return KL_E_ARG;
    reset_handle(se);
    kl_status st = ops->open(se, arg);
    if (st != KL_OK) {
        reset_handle(se);
        return st;
    }
    se->ops = ops;
    return KL_OK;
}

kl_status kl_se_open(struct kl_se *se, const char *uri)
{
    if (!se) return KL_E_ARG;
    reset_handle(se);
    if (!uri) uri = getenv("KEYLINK_SE");
    if (!uri || !*uri) return KL_E_ARG;
    const char *colon = strchr(uri, ':');
    if (!colon || colon == uri) return KL_E_ARG;
    size_t slen = (size_t)(colon - uri);
    for (size_t i = 0; i < KL_TRANSPORT_SLOTS && slots[i]; i++) {
        if (strlen(slots[i]->scheme) == slen && !strncmp(slots[i]->scheme, uri, slen))
            return kl_se_open_transport(se, slots[i], colon + 1);
    }
    return KL_E_ARG;
}

void kl_se_close(struct kl_se *se)
{
    if (!se) return;
    if (se->ops) se->ops->close(se);
    memset(se->sc_state, 0, sizeof se->sc_state); /* may hold channel keys */
    memset(se->req, 0, sizeof se->req);
    memset(se->tx, 0, sizeof se->tx);
    memset(se->rx, 0, sizeof se->rx);
    reset_handle(se);
}

kl_status kl_se_set_timeout(struct kl_se *se, uint32_t ms)
{
    if (!se || ms == 0) return KL_E_ARG;
    se->timeout_ms = ms;
    return KL_OK;
}

kl_status kl_se_transceive_raw(struct kl_se *se, size_t tx_len, size_t *rx_len)
{
    if (!se || !rx_len || tx_len > sizeof se->tx) return KL_E_ARG;
    if (!se->ops) return KL_E_IO;
    *rx_len = 0;
    kl_status st = se->ops->transceive(se, se->tx, tx_len, se->rx, sizeof se->rx, rx_len);
    if (st == KL_OK && *rx_len > sizeof se->rx) st = KL_E_PROTOCOL;
    return st;
}

kl_status kl_se_command(struct kl_se *se, uint8_t cmd, const uint8_t *req, size_t req_len,
                        uint8_t *resp, size_t resp_cap, size_t *resp_len)
{
    if (!se || (req_len && !req) || (resp_cap && !resp)) return KL_E_ARG;
    if (req_len > KL_FRAME_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    size_t dummy;
    if (!resp_len) resp_len = &dummy;
    *resp_len = 0;
    if (!se->ops) return KL_E_IO;

    if (se->sc_hook) {
        kl_status chip = KL_E_INTERNAL;
        kl_status st =
            se->sc_hook(se, se->sc_ctx, cmd, req, req_len, resp, resp_cap, resp_len, &chip);
        if (st != KL_OK) return st;
        if (chip != KL_OK) *resp_len = 0;
        return chip;
    }

    size_t tx_len = 0, rx_len = 0;
    kl_status st = kl_frame_encode(cmd, 0, req, req_len, se->tx, sizeof se->tx, &tx_len);
    if (st != KL_OK) return st;
    st = kl_se_transceive_raw(se, tx_len, &rx_len);
    if (st != KL_OK) return st;
    struct kl_frame f;
    if (kl_frame_decode(se->rx, rx_len, &f) != KL_OK) return KL_E_PROTOCOL;
    if (f.flags != 0) return KL_E_PROTOCOL; /* no channel open: nothing may be protected */
    if (f.code != KL_OK) {
        /* an error carries no payload (docs/protocol.md); host-side codes never travel
         * on the wire except the daemon's KL_E_BUSY */
        if (f.len || (f.code >= 0x80 && f.code != KL_E_BUSY)) return KL_E_PROTOCOL;
        return (kl_status)f.code;
    }
    if (f.len > resp_cap) return KL_E_BUFFER;
    if (f.len) memcpy(resp, f.payload, f.len);
    *resp_len = f.len;
    return KL_OK;
}
