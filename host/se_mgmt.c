/* Management commands: ping, status, config, life cycle, admin authentication, model
 * inputs (tamper, watchdog, reset) and secure boot. */
#include <string.h>

#include "keylink/se.h"
#include "se_wire.h"

/* A command whose answer must be empty. */
static kl_status simple(struct kl_se *se, uint8_t cmd, const uint8_t *req, size_t len)
{
    size_t rlen = 0;
    return kl_se_command(se, cmd, req, len, NULL, 0, &rlen);
}

/* A command whose answer must be exactly want bytes. */
static kl_status fixed(struct kl_se *se, uint8_t cmd, const uint8_t *req, size_t len, uint8_t *resp,
                       size_t want)
{
    size_t rlen = 0;
    kl_status st = kl_se_command(se, cmd, req, len, resp, want, &rlen);
    if (st == KL_E_BUFFER) return KL_E_PROTOCOL; /* the chip sent more than the layout has */
    if (st == KL_OK && rlen != want) return KL_E_PROTOCOL;
    return st;
}

kl_status kl_se_ping(struct kl_se *se, const uint8_t *data, size_t len)
{
    if (!se || (len && !data)) return KL_E_ARG;
    if (len > KL_FRAME_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    if (len && data != se->req) memmove(se->req, data, len);
    /* the echo lands in rx; compare against the copy we sent */
    size_t rlen = 0;
    kl_status st = kl_se_command(se, KL_CMD_PING, se->req, len, se->tx, sizeof se->tx, &rlen);
    if (st != KL_OK) return st;
    if (rlen != len || (len && memcmp(se->tx, se->req, len))) return KL_E_PROTOCOL;
    return KL_OK;
}

kl_status kl_se_status(struct kl_se *se, struct kl_se_status *out)
{
    if (!se || !out) return KL_E_ARG;
    uint8_t b[KL_SE_STATUS_LEN];
    kl_status st = fixed(se, KL_CMD_GET_STATUS, NULL, 0, b, sizeof b);
    if (st != KL_OK) return st;
    memset(out, 0, sizeof *out);
    memcpy(out->name, b, 16);
    out->name[16] = 0;
    memcpy(out->fw, b + 16, 3);
    out->hw = kl_get16(b + 19);
    memcpy(out->serial, b + 21, 24);
    out->lifecycle = b[45];
    out->total_bytes = kl_get16(b + 46);
    out->free_bytes = kl_get16(b + 48);
    out->tamper_events = kl_get32(b + 50);
    out->resets = kl_get32(b + 54);
    out->session = b[58];
    return KL_OK;
}

kl_status kl_se_set_lifecycle(struct kl_se *se, uint8_t state)
{
    if (!se) return KL_E_ARG;
    return simple(se, KL_CMD_SET_LIFECYCLE, &state, 1);
}

kl_status kl_se_get_config(struct kl_se *se, struct kl_se_config *cfg)
{
    if (!se || !cfg) return KL_E_ARG;
    uint8_t b[KL_SE_CONFIG_LEN];
    kl_status st = fixed(se, KL_CMD_GET_CONFIG, NULL, 0, b, sizeof b);
    if (st != KL_OK) return st;
    cfg->flags = b[0];
    cfg->reset_events = b[1];
    cfg->tamper_action = b[2];
    cfg->wd_initial_ms = kl_get32(b + 4);
    cfg->wd_normal_ms = kl_get32(b + 8);
    return KL_OK;
}

kl_status kl_se_set_config(struct kl_se *se, const struct kl_se_config *cfg)
{
    if (!se || !cfg) return KL_E_ARG;
    uint8_t b[KL_SE_CONFIG_LEN];
    b[0] = cfg->flags;
    b[1] = cfg->reset_events;
    b[2] = cfg->tamper_action;
    b[3] = 0;
    kl_put32(b + 4, cfg->wd_initial_ms);
    kl_put32(b + 8, cfg->wd_normal_ms);
    return simple(se, KL_CMD_SET_CONFIG, b, sizeof b);
}

kl_status kl_se_get_challenge(struct kl_se *se, uint8_t challenge[16])
{
    if (!se || !challenge) return KL_E_ARG;
    return fixed(se, KL_CMD_GET_CHALLENGE, NULL, 0, challenge, 16);
}

kl_status kl_se_admin_auth(struct kl_se *se, uint16_t key_id, const uint8_t sig[64])
{
    if (!se || !sig) return KL_E_ARG;
    uint8_t b[66];
    kl_put16(b, key_id);
    memcpy(b + 2, sig, 64);
    return simple(se, KL_CMD_ADMIN_AUTH, b, sizeof b);
}

kl_status kl_se_admin_auth_reset(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    return simple(se, KL_CMD_ADMIN_AUTH_RESET, NULL, 0);
}

kl_status kl_se_reset_factory(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    return simple(se, KL_CMD_RESET_FACTORY, NULL, 0);
}

kl_status kl_se_tamper(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    return simple(se, KL_CMD_TAMPER, NULL, 0);
}

kl_status kl_se_kick(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    return simple(se, KL_CMD_WATCHDOG_KICK, NULL, 0);
}

kl_status kl_se_reset(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    kl_status st = simple(se, KL_CMD_RESET, NULL, 0);
    if (st == KL_OK) {
        /* the chip dropped its channel: forget ours too */
        se->sc_hook = NULL;
        se->sc_ctx = NULL;
        se->sc_open = 0;
        memset(se->sc_state, 0, sizeof se->sc_state);
    }
    return st;
}

kl_status kl_se_verify_boot(struct kl_se *se, uint16_t key_id, const uint8_t digest[32],
                            const uint8_t sig[64])
{
    if (!se || !digest || !sig) return KL_E_ARG;
    uint8_t b[2 + 32 + 64];
    kl_put16(b, key_id);
    memcpy(b + 2, digest, 32);
    memcpy(b + 34, sig, 64);
    return simple(se, KL_CMD_VERIFY_BOOT, b, sizeof b);
}
