/* For the C tests that drive a chip through the device API (include/keylink/se.h). */
#ifndef KL_TESTS_SUPPORT_KL_TEST_SE_H
#define KL_TESTS_SUPPORT_KL_TEST_SE_H

#include "kl_test.h"

#include "keylink/se.h"

/* Attributes of a persistent object every role may use fully, no key usages. */
static inline struct kl_se_object_attr kl_test_attr(uint16_t id, uint8_t type, uint16_t size)
{
    struct kl_se_object_attr a;
    memset(&a, 0, sizeof a);
    a.id = id;
    a.type = type;
    a.props = KL_SE_PROP_PERSISTENT;
    a.size = size;
    CHECK(kl_se_rules_parse("ahsex=rwdgx:ahsex=rwdgx:ahsex=rwdgx", a.rules) == KL_OK);
    a.usage1 = a.usage2 = KL_SE_USAGE_UNUSED;
    return a;
}

#endif
