/* The framed serial protocol; edge_mnv2/micro/protocol.py is the other side and the reference.
 *
 * frame = magic (2) | version u8 | type u8 | seq u16 | length u32 | payload | crc32 u32
 * little-endian; the CRC-32 (IEEE 802.3, as zlib.crc32) covers everything after the magic. */
#ifndef EDGE_MNV2_PROTOCOL_H
#define EDGE_MNV2_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC0 0xE2u
#define PROTO_MAGIC1 0x6Du
#define PROTO_VERSION 1u
#define PROTO_HEADER_BYTES 10u /* magic + version + type + seq + length */
#define PROTO_CRC_BYTES 4u

enum proto_type {
    MSG_INFO = 0x01,
    MSG_RUN = 0x02,
    MSG_CALIBRATE = 0x03,
    MSG_PROFILE = 0x04, /* ticks of each step of the last RUN (firmware built with MODEL_PROFILE) */
    MSG_INFO_REPLY = 0x81,
    MSG_RESULT = 0x82,
    MSG_CALIBRATE_REPLY = 0x83,
    MSG_PROFILE_REPLY = 0x84,
    MSG_ERROR = 0x7F,
};

enum proto_error {
    ERR_BAD_CRC = 1,
    ERR_FRAME_TOO_LONG = 2,
    ERR_UNKNOWN_TYPE = 3,
    ERR_MODEL_FAILED = 4,
    ERR_BAD_VERSION = 5,
    ERR_TIMEOUT = 6,
    ERR_WRONG_PAYLOAD_SIZE = 7,
    ERR_FAULT = 8, /* the CPU faulted; the device halts after reporting it */
};

void crc32_init(void);
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t n); /* start with 0 */

/* Sending a frame in pieces: begin, any number of bytes, end (appends the CRC). */
void frame_begin(uint8_t type, uint16_t seq, uint32_t length);
void frame_bytes(const void *data, size_t n);
void frame_end(void);

void send_error(uint16_t seq, uint16_t code, const char *message);

#endif
