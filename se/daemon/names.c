/* Command names of docs/protocol.md, for the daemon's --verbose log. */
#include <stddef.h>

#include "daemon.h"

static const struct {
    uint8_t code;
    const char *name;
} names[] = {
    {0x10, "CREATE_OBJECT"},     {0x11, "DELETE_OBJECT"},
    {0x12, "READ_OBJECT"},       {0x13, "WRITE_OBJECT"},
    {0x14, "LIST_OBJECTS"},      {0x15, "OBJECT_INFO"},
    {0x16, "COUNTER_UPDATE"},    {0x20, "GENERATE_KEY"},
    {0xC3, "KEY_EXCHANGE"},      {0xC4, "TLS_RECORD"},
    {0xC8, "SIGN_VERIFY"},       {0xC9, "VERIFY_WITH_KEY"},
    {0xCA, "IMPORT_KEY"},        {0xCB, "IMPORT_ROOT_CERT"},
    {0xCF, "IMPORT_CHILD_CERT"}, {0xD0, "MD_INIT"},
    {0xD1, "MD_UPDATE"},         {0xD2, "MD_FINISH"},
    {0xD3, "MD_PEEK"},           {0xD4, "MAC_INIT"},
    {0xD5, "MAC_UPDATE"},        {0xD6, "MAC_FINISH"},
    {0xD8, "CIPHER_INIT"},       {0xD9, "CIPHER_UPDATE"},
    {0xDA, "CIPHER_FINISH"},     {0xDC, "RANDOM"},
    {0xE0, "CHANNEL_OPEN"},      {0xE1, "CHANNEL_CLOSE"},
    {0xE2, "GET_IDENTITY"},      {0xE8, "TAMPER"},
    {0xE9, "WATCHDOG_KICK"},     {0xEA, "RESET"},
    {0xEB, "VERIFY_BOOT"},       {0xF2, "GET_STATUS"},
    {0xF3, "SET_LIFECYCLE"},     {0xF4, "SET_CONFIG"},
    {0xF5, "GET_CONFIG"},        {0xF7, "PING"},
    {0xF8, "GET_CHALLENGE"},     {0xF9, "ADMIN_AUTH"},
    {0xFA, "ADMIN_AUTH_RESET"},  {0xFB, "RESET_FACTORY"},
};

const char *kl_daemon_cmd_name(uint8_t cmd)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == cmd) return names[i].name;
    if (cmd >= 0xB0 && cmd <= 0xBF) return "TLS";
    return NULL;
}
