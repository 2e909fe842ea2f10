/* `mem:DIR` transport: frames go to kl_chip_frame by function call, so in-process use
 * exercises exactly the bytes the daemon would see. */
#include <time.h>

#include "chip.h"
#include "transport_mem.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static kl_status mem_open(struct kl_se *se, const char *dir)
{
    if (!*dir) return KL_E_ARG;
    struct kl_chip *chip = NULL;
    kl_status st = kl_chip_open(dir, &chip);
    if (st != KL_OK) return st;
    se->tp_ctx = chip;
    return KL_OK;
}

static kl_status mem_transceive(struct kl_se *se, const uint8_t *tx, size_t tx_len, uint8_t *rx,
                                size_t rx_cap, size_t *rx_len)
{
    struct kl_chip *chip = se->tp_ctx;
    if (!chip) return KL_E_IO;
    if (rx_cap < KL_FRAME_MAX) return KL_E_BUFFER;
    kl_chip_tick(chip, now_ms()); /* the daemon's timer, done per command here */
    size_t n = kl_chip_frame(chip, tx, tx_len, rx, rx_cap);
    if (n == 0) return KL_E_IO; /* the chip would have closed the link */
    *rx_len = n;
    return KL_OK;
}

static void mem_close(struct kl_se *se)
{
    kl_chip_close(se->tp_ctx);
    se->tp_ctx = NULL;
}

const struct kl_transport_ops kl_transport_mem = {
    .version = KL_TRANSPORT_VERSION,
    .scheme = "mem",
    .open = mem_open,
    .transceive = mem_transceive,
    .close = mem_close,
};

kl_status kl_se_mem_register(void)
{
    return kl_transport_register(&kl_transport_mem);
}
