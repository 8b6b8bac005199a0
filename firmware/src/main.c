/* The serial protocol loop: receive frames, answer INFO, RUN and CALIBRATE, report errors.
 *
 * The receive side keeps the bytes of the frame it is assembling in g_rx. Whenever a frame turns
 * out bad (wrong CRC, oversize length, or stalled mid-frame) only its first byte is dropped and the
 * rest is scanned again for the magic, so a good frame that arrived behind a bad one is still
 * found. A frame that stalls for RX_TIMEOUT_TICKS is abandoned, so a truncated frame cannot make
 * the device wait forever. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "model.h"
#include "protocol.h"
#include "ticks.h"

#define IMAGE_BYTES ((uint32_t)MODEL_INPUT_H * MODEL_INPUT_W * MODEL_INPUT_C)
/* The largest payload the device accepts: a RUN image (smaller requests fit as well). */
#define RX_MAX_PAYLOAD (IMAGE_BYTES > 64u ? IMAGE_BYTES : 64u)
#define RX_BUFFER_BYTES (PROTO_HEADER_BYTES + RX_MAX_PAYLOAD + PROTO_CRC_BYTES)
/* A frame whose next byte does not come within a quarter second of board time is abandoned. */
#define RX_TIMEOUT_TICKS ((uint64_t)(CLOCK_HZ) / 4u)

#ifndef MODEL_INPUT_IN_PLACE
static float g_input[MODEL_INPUT_ELEMS];
#endif
static float g_output[MODEL_OUTPUT_ELEMS];
/* Placed so that a frame's payload (the image, which an int8 model quantizes in place) starts
 * 8-byte aligned. */
static uint8_t g_rx_storage[RX_BUFFER_BYTES + 8] __attribute__((aligned(8)));
#define g_rx (g_rx_storage + (8 - PROTO_HEADER_BYTES % 8) % 8)
static uint32_t g_rx_len;
static uint64_t g_last_byte;

static uint32_t get_le(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void drop(uint32_t n)
{
    if (n >= g_rx_len) {
        g_rx_len = 0;
        return;
    }
    memmove(g_rx, g_rx + n, g_rx_len - n);
    g_rx_len -= n;
}

/* Wait until g_rx holds n bytes. Returns 0 when the line stalled RX_TIMEOUT_TICKS since the last
 * byte (measured from the last byte, so bytes already buffered from a stalled frame are not
 * waited for a second time when rescanned). */
static int fill_to(uint32_t n)
{
    while (g_rx_len < n) {
        int c = uart_read_byte();
        if (c >= 0) {
            g_rx[g_rx_len++] = (uint8_t)c;
            g_last_byte = ticks_now();
        } else if (ticks_now() - g_last_byte > RX_TIMEOUT_TICKS) {
            return 0;
        }
    }
    return 1;
}

/* Wait for the first byte of a frame with no timeout (the device idles here). */
static void wait_first_byte(void)
{
    while (g_rx_len == 0) {
        int c = uart_read_byte();
        if (c >= 0) {
            g_rx[g_rx_len++] = (uint8_t)c;
            g_last_byte = ticks_now();
        }
    }
}

/* "text" followed by the decimal value of v into buf (no printf: keeps newlib's out). */
static const char *message_with_int(char *buf, size_t size, const char *text, int32_t v)
{
    size_t n = strlen(text);
    if (n > size - 13) n = size - 13;
    memcpy(buf, text, n);
    char digits[12];
    int k = 0;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    do {
        digits[k++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    if (v < 0) buf[n++] = '-';
    while (k) buf[n++] = digits[--k];
    buf[n] = 0;
    return buf;
}

static void handle_info(uint16_t seq)
{
    static const char name[] = MODEL_NAME;
    static const char board[] = BOARD_NAME;
    uint8_t p[28];
    put_le(p + 0, PROTO_VERSION, 2);
    put_le(p + 2, (uint32_t)(MODEL_ID), 4);
    put_le(p + 6, MODEL_INPUT_H, 2);
    put_le(p + 8, MODEL_INPUT_W, 2);
    put_le(p + 10, MODEL_INPUT_C, 2);
    put_le(p + 12, MODEL_OUTPUT_ELEMS, 4);
    put_le(p + 16, (uint32_t)(CLOCK_HZ), 4);
    put_le(p + 20, (uint32_t)(MODEL_ARENA_BYTES), 4);
    put_le(p + 24, RX_MAX_PAYLOAD, 4);
    uint8_t name_len = (uint8_t)(sizeof name - 1 > 255 ? 255 : sizeof name - 1);
    uint8_t board_len = (uint8_t)(sizeof board - 1 > 255 ? 255 : sizeof board - 1);
    frame_begin(MSG_INFO_REPLY, seq, sizeof p + 2u + name_len + board_len);
    frame_bytes(p, sizeof p);
    frame_bytes(&name_len, 1);
    frame_bytes(name, name_len);
    frame_bytes(&board_len, 1);
    frame_bytes(board, board_len);
    frame_end();
}

static void handle_run(uint16_t seq, const uint8_t *image, uint32_t length)
{
    char msg[64];
    if (length != IMAGE_BYTES) {
        send_error(seq, ERR_WRONG_PAYLOAD_SIZE,
                   message_with_int(msg, sizeof msg, "RUN needs an image of bytes: ", (int32_t)IMAGE_BYTES));
        return;
    }
    ticks_sync();
    uint64_t t0 = ticks_now();
#ifdef MODEL_INPUT_IN_PLACE
    /* the frame is consumed: the image is overwritten with the int8 input where it lies */
    int32_t rc = model_run_u8((uint8_t *)image, g_output);
#else
    model_preprocess_u8(image, g_input);
    int32_t rc = model_run(g_input, g_output);
#endif
    uint64_t t1 = ticks_now();
    if (rc != 0) {
        send_error(seq, ERR_MODEL_FAILED, message_with_int(msg, sizeof msg, "model_run returned ", rc));
        return;
    }
    uint8_t h[12];
    uint64_t dt = t1 - t0;
    put_le(h, (uint32_t)dt, 4);
    put_le(h + 4, (uint32_t)(dt >> 32), 4);
    put_le(h + 8, MODEL_OUTPUT_ELEMS, 4);
    frame_begin(MSG_RESULT, seq, sizeof h + 4u * MODEL_OUTPUT_ELEMS);
    frame_bytes(h, sizeof h);
    frame_bytes(g_output, 4u * MODEL_OUTPUT_ELEMS); /* little-endian IEEE floats, as the host expects */
    frame_end();
}

/* Two instructions per iteration (subs + bne): relates ticks to executed instructions. */
static void __attribute__((noinline)) spin(uint32_t n)
{
    if (n == 0) return;
    __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

static void handle_calibrate(uint16_t seq, const uint8_t *payload, uint32_t length)
{
    if (length != 4) {
        send_error(seq, ERR_WRONG_PAYLOAD_SIZE, "CALIBRATE needs a u32 iteration count");
        return;
    }
    uint32_t n = get_le(payload, 4);
    ticks_sync();
    uint64_t t0 = ticks_now();
    spin(n);
    uint64_t t1 = ticks_now();
    uint8_t p[16];
    uint64_t dt = t1 - t0;
    put_le(p, (uint32_t)dt, 4);
    put_le(p + 4, (uint32_t)(dt >> 32), 4);
    put_le(p + 8, n, 4);
    put_le(p + 12, 2, 4);
    frame_begin(MSG_CALIBRATE_REPLY, seq, sizeof p);
    frame_bytes(p, sizeof p);
    frame_end();
}

/* The per-step ticks of the last RUN: u32 count, then a u32 per step. */
static void handle_profile(uint16_t seq)
{
#if defined(MODEL_PROFILE) && defined(MODEL_STEPS)
    uint8_t n[4];
    put_le(n, MODEL_STEPS, 4);
    frame_begin(MSG_PROFILE_REPLY, seq, 4u + 4u * MODEL_STEPS);
    frame_bytes(n, 4);
    frame_bytes(model_step_ticks, 4u * MODEL_STEPS); /* little-endian, as the host expects */
    frame_end();
#else
    send_error(seq, ERR_UNKNOWN_TYPE, "this firmware keeps no per-step profile");
#endif
}

static void handle_frame(uint8_t version, uint8_t type, uint16_t seq, const uint8_t *payload,
                         uint32_t length)
{
    char msg[64];
    if (version != PROTO_VERSION) {
        send_error(seq, ERR_BAD_VERSION,
                   message_with_int(msg, sizeof msg, "firmware speaks protocol version ", PROTO_VERSION));
        return;
    }
    switch (type) {
    case MSG_INFO: handle_info(seq); break;
    case MSG_RUN: handle_run(seq, payload, length); break;
    case MSG_CALIBRATE: handle_calibrate(seq, payload, length); break;
    case MSG_PROFILE: handle_profile(seq); break;
    default:
        send_error(seq, ERR_UNKNOWN_TYPE, message_with_int(msg, sizeof msg, "unknown message type ", type));
    }
}

int main(void)
{
    board_init();
    crc32_init();
    ticks_init();
    uart_init();

    for (;;) {
        wait_first_byte();
        if (g_rx[0] != PROTO_MAGIC0) { drop(1); continue; }
        if (!fill_to(2)) { drop(1); continue; }
        if (g_rx[1] != PROTO_MAGIC1) { drop(1); continue; }
        if (!fill_to(PROTO_HEADER_BYTES)) {
            send_error(0, ERR_TIMEOUT, "frame header stalled");
            drop(1);
            continue;
        }
        uint8_t version = g_rx[2], type = g_rx[3];
        uint16_t seq = (uint16_t)get_le(g_rx + 4, 2);
        uint32_t length = get_le(g_rx + 6, 4);
        if (length > RX_MAX_PAYLOAD) {
            char msg[64];
            send_error(seq, ERR_FRAME_TOO_LONG,
                       message_with_int(msg, sizeof msg, "payload longer than the device limit of ",
                                        (int32_t)RX_MAX_PAYLOAD));
            drop(1);
            continue;
        }
        uint32_t total = PROTO_HEADER_BYTES + length + PROTO_CRC_BYTES;
        if (!fill_to(total)) {
            send_error(seq, ERR_TIMEOUT, "frame stalled before its end");
            drop(1);
            continue;
        }
        uint32_t crc = crc32_update(0, g_rx + 2, PROTO_HEADER_BYTES - 2 + length);
        if (crc != get_le(g_rx + total - PROTO_CRC_BYTES, 4)) {
            send_error(seq, ERR_BAD_CRC, "frame CRC mismatch");
            drop(1);
            continue;
        }
        handle_frame(version, type, seq, g_rx + PROTO_HEADER_BYTES, length);
        drop(total);
    }
}
