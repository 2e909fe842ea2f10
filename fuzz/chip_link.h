/* The device library's link straight into the harness chip (fz_chip, chip_setup.h):
 * a transport table whose transceive is kl_chip_frame, like mem: without the files. */
#ifndef KL_FUZZ_CHIP_LINK_H
#define KL_FUZZ_CHIP_LINK_H

#include "chip_setup.h"
#include "keylink/se.h"

static kl_status fz_tr_open(struct kl_se *s, const char *arg)
{
    (void)arg;
    s->tp_ctx = fz_chip;
    return KL_OK;
}

static kl_status fz_tr_xfer(struct kl_se *s, const uint8_t *tx, size_t tx_len, uint8_t *rx,
                            size_t rx_cap, size_t *rx_len)
{
    (void)s;
    size_t n = kl_chip_frame(fz_chip, tx, tx_len, rx, rx_cap);
    if (n == 0) return KL_E_IO;
    *rx_len = n;
    return KL_OK;
}

static void fz_tr_close(struct kl_se *s)
{
    s->tp_ctx = NULL;
}

static const struct kl_transport_ops fz_ops = {
    .version = KL_TRANSPORT_VERSION,
    .scheme = "fuzz",
    .open = fz_tr_open,
    .transceive = fz_tr_xfer,
    .close = fz_tr_close,
};

#endif
