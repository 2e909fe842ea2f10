/*
 * Watchdog and reset pulse: WATCHDOG_KICK, RESET (model input) and the clock
 * (kl_chip_tick). The watchdog runs only when config flag bit 4 is set: after a reset
 * (or a new config) it allows the initial period, after each kick the normal period.
 */
#include "chip_int.h"

uint32_t kl_wd_period(const struct kl_state *s, int initial)
{
    return kl_be32(s->config + (initial ? 4 : 8));
}

void kl_wd_arm(struct kl_chip *c, int initial)
{
    if (!(c->st.config[0] & KL_CFG_WATCHDOG) || !c->have_now) {
        c->st.wd_deadline = 0; /* off, or armed with the initial period at the first tick */
        return;
    }
    c->st.wd_deadline = c->now_ms + kl_wd_period(&c->st, initial);
}

KL_HANDLER(kl_cmd_watchdog_kick)
{
    (void)req, (void)resp, (void)cap, (void)rlen;
    if (len != 0) return KL_E_BAD_LENGTH;
    /* Before the first tick the initial period has not started: nothing to re-arm. */
    if (c->st.wd_deadline != 0) kl_wd_arm(c, 0);
    return KL_OK;
}

KL_HANDLER(kl_cmd_reset)
{
    (void)req, (void)resp, (void)cap, (void)rlen;
    if (len != 0) return KL_E_BAD_LENGTH;
    if (c->st.reset_count < UINT32_MAX) c->st.reset_count++;
    c->st.pending_reset |= KL_PENDING_RESET;
    return KL_OK;
}

void kl_chip_tick(struct kl_chip *c, uint64_t now_ms)
{
    if (!c) return;
    c->now_ms = now_ms;
    c->have_now = 1;
    kl_chip_retry_commit(c);
    if (!(c->st.config[0] & KL_CFG_WATCHDOG)) return;
    if (c->st.wd_deadline == 0) {
        kl_wd_arm(c, 1);
        return;
    }
    if (now_ms < c->st.wd_deadline) return;
    if (c->st.config[1] & KL_RST_WATCHDOG)
        kl_chip_event(c, KL_RST_WATCHDOG); /* resets and re-arms */
    else
        kl_wd_arm(c, 1);
}
