#include "protocol.h"
#include "board.h"

#include <string.h>

/* Table built at start-up (1 KiB of .bss) rather than const: keeps flash for weights. */
static uint32_t g_crc_table[256];
static uint32_t g_tx_crc;

void crc32_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        g_crc_table[i] = c;
    }
}

uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t n)
{
    crc = ~crc;
    while (n--) crc = g_crc_table[(crc ^ *data++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void frame_begin(uint8_t type, uint16_t seq, uint32_t length)
{
    uint8_t h[PROTO_HEADER_BYTES];
    h[0] = PROTO_MAGIC0;
    h[1] = PROTO_MAGIC1;
    h[2] = PROTO_VERSION;
    h[3] = type;
    put_le(h + 4, seq, 2);
    put_le(h + 6, length, 4);
    uart_write(h, sizeof h);
    g_tx_crc = crc32_update(0, h + 2, sizeof h - 2);
}

void frame_bytes(const void *data, size_t n)
{
    uart_write((const uint8_t *)data, n);
    g_tx_crc = crc32_update(g_tx_crc, (const uint8_t *)data, n);
}

void frame_end(void)
{
    uint8_t c[PROTO_CRC_BYTES];
    put_le(c, g_tx_crc, 4);
    uart_write(c, sizeof c);
}

void send_error(uint16_t seq, uint16_t code, const char *message)
{
    size_t n = strlen(message);
    if (n > 200) n = 200;
    uint8_t h[4];
    put_le(h, code, 2);
    put_le(h + 2, (uint32_t)n, 2);
    frame_begin(MSG_ERROR, seq, (uint32_t)(4 + n));
    frame_bytes(h, 4);
    frame_bytes(message, n);
    frame_end();
}
