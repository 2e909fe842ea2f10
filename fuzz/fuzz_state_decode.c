/*
 * se/state_codec.c: kl_state_decode on a hostile decrypted image. A refused image gives
 * KL_E_STORAGE with a reason and leaves the outputs untouched; an accepted one encodes
 * back to exactly the same bytes (one meaning per image) and passes the same checks the
 * chip relies on (objects sorted, inside the pool, storage adds up).
 */
#include <string.h>

#include "chip_int.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static struct kl_chip ch;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&ch.st, 0xA5, sizeof ch.st);
    memset(ch.serial, 0xA5, sizeof ch.serial);
    const char *why = NULL;
    kl_status st = kl_state_decode(data, size, &ch.st, ch.serial, ch.id_priv, ch.id_pub, &why);
    if (st != KL_OK) {
        FZ_CHECK(st == KL_E_STORAGE && why != NULL && why[0] != 0);
        FZ_CHECK(ch.serial[0] == 0xA5 && ch.st.nobj == 0xA5A5);
        return 0;
    }
    const struct kl_state *s = &ch.st;
    FZ_CHECK(s->nobj <= KL_MAX_OBJS);
    size_t pool = 0;
    for (size_t i = 0; i < s->nobj; i++) {
        const struct kl_obj *o = &s->obj[i];
        if (i) FZ_CHECK(s->obj[i - 1].id < o->id);
        FZ_CHECK(o->used <= o->size && (size_t)o->off + o->size <= KL_STORAGE_TOTAL);
        pool += o->size;
    }
    FZ_CHECK(pool == s->pool_used);
    FZ_CHECK((size_t)s->nobj * KL_OBJ_OVERHEAD + s->pool_used <= KL_STORAGE_TOTAL);
    uint8_t *img = NULL;
    size_t n = 0;
    FZ_CHECK(kl_state_encode(&ch, &img, &n) == KL_OK);
    FZ_CHECK(n == size && memcmp(img, data, n) == 0);
    free(img);
    return 0;
}
