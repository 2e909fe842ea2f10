/*
 * Access-rule text (`ahs=rwdgx:ah=rx:h=x`), parsed twice: by the chip model
 * (se/rules.c, kl_rules_parse/format) and by the device library (host/se_text.c,
 * kl_se_rules_parse/format), which a CLI uses. Differential: both accept the same texts
 * with the same 9 bytes; an accepted block is valid for the chip and formats to a
 * canonical text that parses back to the same bytes. The input's first 9 bytes are also
 * formatted as a raw block: a valid one gets the same text from both.
 */
#include <string.h>

#include "chip_int.h"
#include "fuzz.h"
#include "keylink/se.h"
#include "rules.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 200) return 0;
    char text[201];
    memcpy(text, data, size);
    text[size] = 0;
    uint8_t a[9], b[9];
    kl_status sa = kl_rules_parse(text, a), sb = kl_se_rules_parse(text, b);
    FZ_CHECK((sa == KL_OK) == (sb == KL_OK));
    if (sa == KL_OK) {
        FZ_CHECK(memcmp(a, b, 9) == 0);
        FZ_CHECK(kl_rules_valid(a));
        char t1[KL_RULES_TEXT_MAX], t2[64];
        FZ_CHECK(kl_rules_format(a, t1, sizeof t1) == KL_OK);
        FZ_CHECK(kl_se_rules_format(a, t2, sizeof t2) == KL_OK);
        FZ_CHECK(strcmp(t1, t2) == 0);
        uint8_t c[9];
        FZ_CHECK(kl_rules_parse(t1, c) == KL_OK && memcmp(a, c, 9) == 0);
    }
    if (size >= 9) {
        char t1[KL_RULES_TEXT_MAX], t2[64];
        kl_status fa = kl_rules_format(data, t1, sizeof t1);
        kl_status fb = kl_se_rules_format(data, t2, sizeof t2);
        FZ_CHECK((fa == KL_OK) == (kl_rules_valid(data) != 0));
        /* the library formats any block (it never refuses one, see the review), so only
         * valid blocks are compared */
        if (fa == KL_OK) {
            FZ_CHECK(fb == KL_OK && strcmp(t1, t2) == 0);
            uint8_t c[9];
            FZ_CHECK(kl_rules_parse(t1, c) == KL_OK && memcmp(data, c, 9) == 0);
        }
    }
    return 0;
}
