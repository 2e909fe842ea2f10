/*
 * The chip: open/close, the command dispatcher, commit and rollback, resets.
 *
 * Each command runs on a snapshot discipline: the state is copied before the handler;
 * a handler that fails, or a commit that fails, puts the copy back, so a refused command
 * changes nothing and every acknowledged change is on disk (KL_E_STORAGE otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip_int.h"
#include "crypto_sessions.h"
#include "image.h"

static const struct kl_cmd core_cmds[] = {
    {0xF7, KL_CMDF_NO_CHANNEL, "PING", kl_cmd_ping},
    {0xF2, KL_CMDF_ANY_STATE | KL_CMDF_NO_CHANNEL, "GET_STATUS", kl_cmd_get_status},
    {0xF3, KL_CMDF_PERSIST, "SET_LIFECYCLE", kl_cmd_set_lifecycle},
    {0xF4, KL_CMDF_PERSIST, "SET_CONFIG", kl_cmd_set_config},
    {0xF5, 0, "GET_CONFIG", kl_cmd_get_config},
    {0xF8, 0, "GET_CHALLENGE", kl_cmd_get_challenge},
    {0xF9, 0, "ADMIN_AUTH", kl_cmd_admin_auth},
    {0xFA, 0, "ADMIN_AUTH_RESET", kl_cmd_admin_auth_reset},
    {0xFB, KL_CMDF_PERSIST, "RESET_FACTORY", kl_cmd_reset_factory},
    {0xE8, KL_CMDF_PERSIST | KL_CMDF_NO_CHANNEL, "TAMPER", kl_cmd_tamper},
    {0xE9, 0, "WATCHDOG_KICK", kl_cmd_watchdog_kick},
    {0xEA, KL_CMDF_PERSIST | KL_CMDF_NO_CHANNEL, "RESET", kl_cmd_reset},
    {0xEB, 0, "VERIFY_BOOT", kl_cmd_verify_boot},
    {0x10, KL_CMDF_PERSIST, "CREATE_OBJECT", kl_cmd_create_object},
    {0x11, KL_CMDF_PERSIST, "DELETE_OBJECT", kl_cmd_delete_object},
    {0x12, 0, "READ_OBJECT", kl_cmd_read_object},
    {0x13, KL_CMDF_PERSIST, "WRITE_OBJECT", kl_cmd_write_object},
    {0x14, 0, "LIST_OBJECTS", kl_cmd_list_objects},
    {0x15, 0, "OBJECT_INFO", kl_cmd_object_info},
    {0x16, KL_CMDF_PERSIST, "COUNTER_UPDATE", kl_cmd_counter_update},
    {0x20, KL_CMDF_PERSIST, "GENERATE_KEY", kl_cmd_generate_key},
    {0xCA, KL_CMDF_PERSIST, "IMPORT_KEY", kl_cmd_import_key},
};

static const struct kl_cmd *find_cmd(uint8_t code)
{
    for (size_t i = 0; i < sizeof core_cmds / sizeof core_cmds[0]; i++)
        if (core_cmds[i].code == code) return &core_cmds[i];
    for (size_t i = 0; i < kl_cmds_crypto_n; i++)
        if (kl_cmds_crypto[i].code == code) return &kl_cmds_crypto[i];
    for (size_t i = 0; i < kl_cmds_channel_n; i++)
        if (kl_cmds_channel[i].code == code) return &kl_cmds_channel[i];
    for (size_t i = 0; i < kl_cmds_tls_n; i++)
        if (kl_cmds_tls[i].code == code) return &kl_cmds_tls[i];
    return NULL;
}

struct kl_cx_drbg *kl_chip_drbg(struct kl_chip *c)
{
    return c->drbg;
}

int kl_chip_role_host(const struct kl_chip *c)
{
    return c->channel_open;
}

const uint8_t *kl_chip_identity_priv(struct kl_chip *c)
{
    return c->id_priv;
}

const uint8_t *kl_chip_identity_pub(struct kl_chip *c)
{
    return c->id_pub;
}

static void drop_channel(struct kl_chip *c)
{
    if (c->channel_free) c->channel_free(c);
    c->channel = NULL;
    c->channel_open = 0;
    c->channel_free = NULL;
}

/* RAM sessions that may hold keys: crypto contexts and the TLS session. */
static void drop_sessions(struct kl_chip *c)
{
    if (c->cs) kl_crypto_sessions_reset(c->cs);
    if (c->tls_free) c->tls_free(c);
    c->tls = NULL;
    c->tls_free = NULL;
}

void kl_chip_reset_volatile(struct kl_chip *c)
{
    kl_obj_remove_props(&c->st, KL_PROP_TEMP);
    c->st.admin = 0;
    c->st.boot_ok = 0;
    c->st.pending_reset = 0;
    c->challenge_set = 0;
    kl_cx_wipe(c->challenge, sizeof c->challenge);
    drop_sessions(c);
    drop_channel(c);
    kl_wd_arm(c, 1);
}

/* Writes the persistent state to the image if it differs from the last commit. */
static kl_status commit(struct kl_chip *c)
{
    uint8_t *b;
    size_t n;
    if (kl_state_encode(c, &b, &n) != KL_OK) return KL_E_STORAGE;
    if (c->committed && n == c->committed_len && memcmp(b, c->committed, n) == 0) {
        kl_image_free_data(b, n);
        return KL_OK;
    }
    if (kl_image_commit(c->image, b, n) != KL_OK) {
        kl_image_free_data(b, n);
        return KL_E_STORAGE;
    }
    kl_image_free_data(c->committed, c->committed_len);
    c->committed = b;
    c->committed_len = n;
    c->uncommitted = 0;
    return KL_OK;
}

void kl_chip_retry_commit(struct kl_chip *c)
{
    if (c->uncommitted) (void)commit(c);
}

void kl_chip_event(struct kl_chip *c, uint8_t reset_event)
{
    if (!c || !(c->st.config[1] & reset_event)) return;
    if (c->st.reset_count < UINT32_MAX) c->st.reset_count++;
    kl_chip_reset_volatile(c);
    /* Not tied to a command: when the commit fails, the count stays in memory and goes
     * out with the next successful commit (or the retry in kl_chip_tick). */
    if (commit(c) != KL_OK) c->uncommitted = 1;
}

kl_status kl_chip_execute(struct kl_chip *c, uint8_t cmd, const uint8_t *req, size_t req_len,
                          uint8_t *resp, size_t resp_cap, size_t *resp_len)
{
    if (resp_len) *resp_len = 0;
    if (!c || !resp || !resp_len || (!req && req_len)) return KL_E_INTERNAL;
    if (resp_cap < KL_MAX_PAYLOAD) return KL_E_INTERNAL;
    static const uint8_t none[1] = {0};
    if (!req) req = none;
    const struct kl_cmd *k = find_cmd(cmd);
    if (!k) return KL_E_UNKNOWN_COMMAND;
    if (req_len > KL_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    if (c->st.lifecycle == KL_LC_TERMINATED && !(k->flags & KL_CMDF_ANY_STATE))
        return KL_E_TERMINATED;
    if ((c->st.config[0] & KL_CFG_REQUIRE_HOST) && !c->channel_open &&
        !(k->flags & KL_CMDF_NO_CHANNEL))
        return KL_E_CHANNEL_REQUIRED;

    c->snap = c->st;
    c->events = 0;
    c->dirty = 0;
    size_t rlen = 0;
    kl_status st = k->fn(c, req, req_len, resp, resp_cap, &rlen);
    if (st == KL_OK && rlen > resp_cap) st = KL_E_INTERNAL;
    if (st == KL_OK && ((k->flags & KL_CMDF_PERSIST) || c->dirty) && commit(c) != KL_OK)
        st = KL_E_STORAGE;
    if (st != KL_OK) {
        c->st = c->snap; /* the command changed nothing */
        rlen = 0;
    } else if (c->st.pending_reset & KL_PENDING_RESET) {
        kl_chip_reset_volatile(c);
    } else if (c->st.pending_reset & KL_PENDING_WIPE) {
        drop_sessions(c);
    }
    c->st.pending_reset = 0;
    if (c->events) kl_chip_event(c, c->events);
    c->events = 0;
    c->dirty = 0;
    kl_cx_wipe(&c->snap, sizeof c->snap);
    if (st != KL_OK) kl_cx_wipe(resp, resp_cap < KL_MAX_PAYLOAD ? resp_cap : KL_MAX_PAYLOAD);
    *resp_len = rlen;
    return st;
}

/* A factory-fresh chip: new serial and identity key, DELIVERY, default config. */
static kl_status factory(struct kl_chip *c)
{
    memset(&c->st, 0, sizeof c->st);
    c->st.lifecycle = KL_LC_DELIVERY;
    kl_config_default(c->st.config);
    if (kl_cx_drbg_generate(c->drbg, c->serial, KL_SERIAL_LEN) != KL_OK ||
        kl_cx_ec_keygen(c->drbg, c->id_priv, c->id_pub) != KL_OK)
        return KL_E_INTERNAL;
    return commit(c);
}

kl_status kl_chip_open(const char *state_dir, struct kl_chip **out)
{
    if (!state_dir || !out) return KL_E_ARG;
    *out = NULL;
    struct kl_chip *c = calloc(1, sizeof *c);
    if (!c) return KL_E_INTERNAL;
    static const char pers[] = "keylink-se chip";
    kl_status st = kl_cx_drbg_new((const uint8_t *)pers, sizeof pers - 1, &c->drbg);
    if (st != KL_OK) goto fail;
    int fresh = 0;
    st = kl_image_open(state_dir, &c->image, &fresh);
    if (st != KL_OK) goto fail;
    uint8_t *data = NULL;
    size_t n = 0;
    st = kl_image_load(c->image, &data, &n);
    if (st == KL_E_NOT_FOUND) {
        st = factory(c);
    } else if (st == KL_OK) {
        const char *why = "";
        st = kl_state_decode(data, n, &c->st, c->serial, c->id_priv, c->id_pub, &why);
        if (st != KL_OK)
            fprintf(stderr, "keylink-se: state dir %s: chip state refused: %s\n", state_dir, why);
        if (st == KL_OK) {
            c->committed = data; /* what is on disk now */
            c->committed_len = n;
            data = NULL;
        }
        kl_image_free_data(data, n);
    }
    if (st != KL_OK) goto fail;
    st = kl_crypto_sessions_new(&c->cs);
    if (st != KL_OK) goto fail;
    kl_wd_arm(c, 1);
    *out = c;
    return KL_OK;
fail:
    kl_chip_close(c);
    return st;
}

void kl_chip_close(struct kl_chip *c)
{
    if (!c) return;
    drop_channel(c);
    if (c->tls_free) c->tls_free(c);
    if (c->cs) kl_crypto_sessions_free(c->cs);
    kl_image_close(c->image);
    kl_image_free_data(c->committed, c->committed_len);
    kl_cx_drbg_free(c->drbg);
    kl_cx_wipe(c, sizeof *c);
    free(c);
}
