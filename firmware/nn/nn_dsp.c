/* The int8 kernels for cores with the DSP extension (Armv7E-M / Armv8-M Mainline DSP: Cortex-M4, M7,
 * M33, M55): ACLE __smlad / __sxtb16 and friends, bit-identical to nn_portable.c.
 *
 * Building blocks:
 *   - 16-bit pairs: __sxtb16(w) = (w0, w2) and __sxtb16(w, ror 8) = (w1, w3) from one 32-bit load of
 *     four int8 weights; the activations are converted once into the same order in scratch
 *     (x0,x2),(x1,x3), so one __smlad does two multiply-accumulates.
 *   - Requantization (acc * mult + 2^(shift-1)) >> shift, exact for every shift 1..62:
 *       shift >= 33: (smmla(acc, mult, 2^(shift-33))) >> (shift-32)   [smmla: c + floor(a*b / 2^32)]
 *       shift == 32: smmulr(acc, mult)                                 [round(a*b / 2^32)]
 *       shift <  32: the 64-bit formula.
 *     The mode is a compile-time constant of each instantiation of a kernel body (always_inline +
 *     a switch at the entry), so the inner loops carry no branch for it.
 *   - Clamping: [0, 127] (ReLU6 layers) is one __usat(x, 7); any other [lo, hi] inside [-128, 127] is
 *     __ssat(x, 8) followed by a per-byte max/min (__ssub8 + __sel) on packed outputs. Ranges outside
 *     int8 (which the portable kernel wraps to int8) go to the portable kernel.
 *
 * Unaligned 32-bit loads (memcpy -> LDR) are fine on every core this file is built for.
 */
#include "mnv2_nn.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP

#include <arm_acle.h>
#include <stddef.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                          */

ALWAYS_INLINE uint32_t ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

ALWAYS_INLINE int32_t smmla(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

ALWAYS_INLINE int32_t smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

ALWAYS_INLINE int32_t sxtb16_ror8(uint32_t w)
{
    int32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

ALWAYS_INLINE int32_t sxtb16(uint32_t w) { return (int32_t)__sxtb16(w); }

ALWAYS_INLINE int32_t smlad(int32_t a, int32_t b, int32_t acc) { return __smlad((int16x2_t)a, (int16x2_t)b, acc); }

ALWAYS_INLINE int32_t pkhbt(int32_t lo, int32_t hi) { return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16)); }
ALWAYS_INLINE int32_t pkhtb(int32_t hi, int32_t lo) { return (int32_t)(((uint32_t)hi & 0xFFFF0000u) | ((uint32_t)lo >> 16)); }

enum { RQ_HI = 0, RQ_32 = 1, RQ_GEN = 2 };

typedef struct {
    int32_t rnd;   /* RQ_HI: 2^(shift-33) */
    int32_t k;     /* RQ_HI: shift - 32 */
    int32_t shift; /* RQ_GEN */
} rq_t;

ALWAYS_INLINE int rq_mode(int32_t shift) { return shift >= 33 ? RQ_HI : shift == 32 ? RQ_32 : RQ_GEN; }

ALWAYS_INLINE rq_t rq_make(int32_t shift)
{
    rq_t r;
    r.shift = shift;
    r.k = shift - 32;
    r.rnd = shift >= 33 ? (int32_t)1 << (shift - 33) : 0;
    return r;
}

/* The requantized value before clamping, already inside [-128, 127] when it matters (RQ_GEN clamps
 * to int8 range itself so that the saturation below stays exact). */
ALWAYS_INLINE int32_t rq_raw(int32_t acc, int32_t m, const int mode, rq_t r)
{
    if (mode == RQ_HI) return smmla(acc, m, r.rnd) >> r.k;
    if (mode == RQ_32) return smmulr(acc, m);
    int64_t v = ((int64_t)acc * m + ((int64_t)1 << (r.shift - 1))) >> r.shift;
    return v < -128 ? -128 : v > 127 ? 127 : (int32_t)v;
}

/* Saturate to int8 ([0,127] for relu). */
ALWAYS_INLINE int32_t rq_sat(int32_t t, const int relu) { return relu ? (int32_t)__usat(t, 7) : __ssat(t, 8); }

/* Full requantization of one value with clamp [lo, hi] (scalar; tails). */
ALWAYS_INLINE int32_t rq_one(int32_t acc, int32_t m, const int mode, rq_t r, const int relu, int32_t lo, int32_t hi)
{
    int32_t y = rq_sat(rq_raw(acc, m, mode, r), relu);
    if (!relu) y = y < lo ? lo : y > hi ? hi : y;
    return y;
}

/* Per-byte clamp of 4 packed int8 values to [lo, hi] (bytes replicated in lo4 / hi4). */
ALWAYS_INLINE uint32_t clamp4(uint32_t p, uint32_t lo4, uint32_t hi4)
{
    (void)__ssub8((int8x4_t)p, (int8x4_t)lo4); /* GE where p >= lo */
    p = (uint32_t)__sel((uint8x4_t)p, (uint8x4_t)lo4);
    (void)__ssub8((int8x4_t)hi4, (int8x4_t)p); /* GE where hi >= p */
    p = (uint32_t)__sel((uint8x4_t)p, (uint8x4_t)hi4);
    return p;
}

ALWAYS_INLINE uint32_t rep4(int32_t v) { return ((uint32_t)v & 0xFFu) * 0x01010101u; }

/* 0: relu clamp [0,127]; 1: general clamp inside int8; -1: not representable (use the portable). */
static int clamp_kind(int32_t lo, int32_t hi)
{
    if (lo == 0 && hi == 127) return 0;
    if (lo >= -128 && hi <= 127 && lo <= hi) return 1;
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* The 2 pixels x 2 output channels dot-product core (pointwise and the stem).
 *
 * xs: the two pixels' K values as int16 in chunks of four: for chunk j the words
 *     [p0 (x0,x2)] [p0 (x1,x3)] [p1 (x0,x2)] [p1 (x1,x3)], the last chunk zero-padded.
 * w0: K int8 weights of output channel o, w0 + K those of o + 1 (any alignment).
 * The K % 4 tail chunk loads the row's last four bytes and shifts the padding bytes out (in bounds
 * for K >= 4; K < 4 assembles the bytes one by one).
 */
ALWAYS_INLINE uint32_t tail_word(const int8_t *row, int32_t K)
{
    int32_t r = K & 3;
    if (K >= 4) return ld32(row + K - 4) >> (8 * (4 - r));
    uint32_t v = 0;
    for (int32_t i = 0; i < r; ++i) v |= (uint32_t)(uint8_t)row[i] << (8 * i);
    return v;
}

#define MAC4(xa, xb, wv, acc)                                                                      \
    do {                                                                                           \
        (acc) = smlad((xa), sxtb16(wv), (acc));                                                    \
        (acc) = smlad((xb), sxtb16_ror8(wv), (acc));                                               \
    } while (0)

/* acc[0] p0 o0, acc[1] p0 o1, acc[2] p1 o0, acc[3] p1 o1 */
ALWAYS_INLINE void dot2x2(const int32_t *xs, const int8_t *w0, int32_t K, int32_t b0, int32_t b1, int32_t acc[4])
{
    const int8_t *w1 = w0 + K;
    int32_t a00 = b0, a01 = b1, a10 = b0, a11 = b1;
    int32_t n = K >> 2;
    const int32_t *xp = xs;
    for (; n >= 2; n -= 2) {
        int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        uint32_t wa = ld32(w0), wb = ld32(w1);
        int32_t wa0 = sxtb16(wa), wa1 = sxtb16_ror8(wa);
        a00 = smlad(x0, wa0, a00); a00 = smlad(x1, wa1, a00);
        a10 = smlad(x2, wa0, a10); a10 = smlad(x3, wa1, a10);
        int32_t wb0 = sxtb16(wb), wb1 = sxtb16_ror8(wb);
        a01 = smlad(x0, wb0, a01); a01 = smlad(x1, wb1, a01);
        a11 = smlad(x2, wb0, a11); a11 = smlad(x3, wb1, a11);
        x0 = xp[4]; x1 = xp[5]; x2 = xp[6]; x3 = xp[7];
        wa = ld32(w0 + 4); wb = ld32(w1 + 4);
        wa0 = sxtb16(wa); wa1 = sxtb16_ror8(wa);
        a00 = smlad(x0, wa0, a00); a00 = smlad(x1, wa1, a00);
        a10 = smlad(x2, wa0, a10); a10 = smlad(x3, wa1, a10);
        wb0 = sxtb16(wb); wb1 = sxtb16_ror8(wb);
        a01 = smlad(x0, wb0, a01); a01 = smlad(x1, wb1, a01);
        a11 = smlad(x2, wb0, a11); a11 = smlad(x3, wb1, a11);
        xp += 8; w0 += 8; w1 += 8;
    }
    if (n) {
        int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        uint32_t wa = ld32(w0), wb = ld32(w1);
        int32_t wa0 = sxtb16(wa), wa1 = sxtb16_ror8(wa);
        a00 = smlad(x0, wa0, a00); a00 = smlad(x1, wa1, a00);
        a10 = smlad(x2, wa0, a10); a10 = smlad(x3, wa1, a10);
        int32_t wb0 = sxtb16(wb), wb1 = sxtb16_ror8(wb);
        a01 = smlad(x0, wb0, a01); a01 = smlad(x1, wb1, a01);
        a11 = smlad(x2, wb0, a11); a11 = smlad(x3, wb1, a11);
        xp += 4; w0 += 4; w1 += 4;
    }
    if (K & 3) {
        int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        uint32_t wa = tail_word(w0 - (K & ~3) , K), wb = tail_word(w1 - (K & ~3), K);
        int32_t wa0 = sxtb16(wa), wa1 = sxtb16_ror8(wa);
        a00 = smlad(x0, wa0, a00); a00 = smlad(x1, wa1, a00);
        a10 = smlad(x2, wa0, a10); a10 = smlad(x3, wa1, a10);
        int32_t wb0 = sxtb16(wb), wb1 = sxtb16_ror8(wb);
        a01 = smlad(x0, wb0, a01); a01 = smlad(x1, wb1, a01);
        a11 = smlad(x2, wb0, a11); a11 = smlad(x3, wb1, a11);
    }
    acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
}

/* Converts K int8 values of two pixels (x0 and x1; x1 may equal x0) into dot2x2's layout. */
ALWAYS_INLINE void to_pairs2(int32_t *xs, const int8_t *x0, const int8_t *x1, int32_t K)
{
    int32_t n = K >> 2;
    for (int32_t j = 0; j < n; ++j) {
        uint32_t a = ld32(x0 + 4 * j), b = ld32(x1 + 4 * j);
        xs[0] = sxtb16(a); xs[1] = sxtb16_ror8(a); xs[2] = sxtb16(b); xs[3] = sxtb16_ror8(b);
        xs += 4;
    }
    int32_t r = K & 3;
    if (r) {
        uint32_t a = 0, b = 0;
        for (int32_t i = 0; i < r; ++i) {
            a |= (uint32_t)(uint8_t)x0[4 * n + i] << (8 * i);
            b |= (uint32_t)(uint8_t)x1[4 * n + i] << (8 * i);
        }
        xs[0] = sxtb16(a); xs[1] = sxtb16_ror8(a); xs[2] = sxtb16(b); xs[3] = sxtb16_ror8(b);
    }
}

/* Requantizes and stores a 2x2 block: pixel p0 -> o0[0..1], pixel p1 -> o1[0..1] (o1 NULL: none);
 * two == 0: only the first output channel. */
ALWAYS_INLINE void store2x2(const int32_t acc[4], const int32_t *m, const int mode, rq_t r, const int relu,
                            int32_t lo, int32_t hi, uint32_t lo4, uint32_t hi4, int8_t *o0, int8_t *o1, int two)
{
    if (two) {
        int32_t m0 = m[0], m1 = m[1];
        int32_t y00 = rq_sat(rq_raw(acc[0], m0, mode, r), relu);
        int32_t y01 = rq_sat(rq_raw(acc[1], m1, mode, r), relu);
        uint32_t p0 = relu ? (uint32_t)y00 | ((uint32_t)y01 << 8) : ((uint32_t)y00 & 0xFFu) | ((uint32_t)y01 << 8);
        if (!relu) p0 = clamp4(p0, lo4, hi4);
        uint16_t h0 = (uint16_t)p0;
        memcpy(o0, &h0, 2);
        if (o1) {
            int32_t y10 = rq_sat(rq_raw(acc[2], m0, mode, r), relu);
            int32_t y11 = rq_sat(rq_raw(acc[3], m1, mode, r), relu);
            uint32_t p1 = relu ? (uint32_t)y10 | ((uint32_t)y11 << 8) : ((uint32_t)y10 & 0xFFu) | ((uint32_t)y11 << 8);
            if (!relu) p1 = clamp4(p1, lo4, hi4);
            uint16_t h1 = (uint16_t)p1;
            memcpy(o1, &h1, 2);
        }
    } else {
        o0[0] = (int8_t)rq_one(acc[0], m[0], mode, r, relu, lo, hi);
        if (o1) o1[0] = (int8_t)rq_one(acc[2], m[0], mode, r, relu, lo, hi);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* The 2x2 core in assembly: one pixel pair (xs, as to_pairs2 lays it out) against output channel
 * pairs o = 0, 2, .. (w .. wend), bias as the accumulators' start, requantization, clamping and
 * halfword stores, everything but the scratch conversion. Per 16 MACs: one LDM of the pixels' four
 * int16 pairs, two weight LDRs, four SXTB16, eight SMLAD. Register use: r0 scratch pointer, r1 row o
 * (row o + 1 at [r1, r2]), r2 K, r3 loop count, r4..r7 accumulators (p0 o0, p0 o1, p1 o0, p1 o1),
 * r8..r11 the pixels' pairs, r12 / lr weights; the job lives on the stack (one LDM reloads it).
 * Variants: requantization (HI: smmla + asr, 32: smmulr), clamp (relu: usat 7; else ssat 8 and a
 * per-byte max/min), and K % 8 != 0 (an extra 4-chunk and a K % 4 tail: the row's last four bytes
 * shifted right; needs K >= 4). o1_off = 0 for a lone pixel: its duplicate is stored first and then
 * overwritten by the real one. */
typedef struct {
    const int32_t *mult; /* 0 (advanced by the kernel) */
    const int32_t *bias; /* 4 */
    int8_t *o0;          /* 8 */
    int32_t o1_off;      /* 12 */
    int32_t rnd;         /* 16 */
    int32_t k;           /* 20 */
    const int32_t *xs;   /* 24 */
    int32_t n8;          /* 28: K / 8 */
    const int8_t *wend;  /* 32 */
    const int8_t *w;     /* 36 */
    int32_t K;           /* 40 */
    uint32_t lo4;        /* 44 */
    uint32_t hi4;        /* 48 */
    int32_t has4;        /* 52: K & 4 */
    int32_t taild;       /* 56: 4 - K % 4, 0 without a tail */
    int32_t tailsh;      /* 60: 8 * taild */
} mac_job_t;

__asm__(
    ".pushsection .text.mnv2_dsp_mac2x2,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro MNV2_MACCHUNK\n"
    "  ldmia r0!, {r8-r11}\n"
    "  ldr r12, [r1, r2]\n"
    "  sxtb16 lr, r12\n"
    "  sxtb16 r12, r12, ror #8\n"
    "  smlad r5, r8, lr, r5\n"
    "  smlad r5, r9, r12, r5\n"
    "  smlad r7, r10, lr, r7\n"
    "  smlad r7, r11, r12, r7\n"
    "  ldr r12, [r1], #4\n"
    "  sxtb16 lr, r12\n"
    "  sxtb16 r12, r12, ror #8\n"
    "  smlad r4, r8, lr, r4\n"
    "  smlad r4, r9, r12, r4\n"
    "  smlad r6, r10, lr, r6\n"
    "  smlad r6, r11, r12, r6\n"
    ".endm\n"
    ".macro MNV2_PWK name, rq, relu, gen\n"
    "  .align 2\n"
    "  .global \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #64\n"
    "  ldm r0!, {r1-r12}\n"
    "  stm sp, {r1-r12}\n"
    "  ldm r0, {r1-r4}\n"
    "  add r5, sp, #48\n"
    "  stm r5, {r1-r4}\n"
    "  ldr r1, [sp, #36]\n"
    "  ldr r2, [sp, #40]\n"
    "  ldm sp, {r8-r10}\n"
    "1:\n"
    "  ldrd r4, r5, [r9], #8\n"
    "  mov r6, r4\n"
    "  mov r7, r5\n"
    "  stm sp, {r8-r10}\n"
    "  ldrd r0, r3, [sp, #24]\n"
    "  .if \\gen\n"
    "  cmp r3, #0\n"
    "  beq 3f\n"
    "  .endif\n"
    "2:\n"
    "  MNV2_MACCHUNK\n"
    "  MNV2_MACCHUNK\n"
    "  subs r3, r3, #1\n"
    "  bne 2b\n"
    "3:\n"
    "  .if \\gen\n"
    "  ldr r3, [sp, #52]\n"
    "  cmp r3, #0\n"
    "  beq 4f\n"
    "  MNV2_MACCHUNK\n"
    "4:\n"
    "  ldr r3, [sp, #56]\n"
    "  cmp r3, #0\n"
    "  beq 5f\n"
    "  ldmia r0!, {r8-r11}\n"
    "  sub r1, r1, r3\n"
    "  ldr r3, [sp, #60]\n"
    "  ldr r12, [r1, r2]\n"
    "  lsr r12, r12, r3\n"
    "  sxtb16 lr, r12\n"
    "  sxtb16 r12, r12, ror #8\n"
    "  smlad r5, r8, lr, r5\n"
    "  smlad r5, r9, r12, r5\n"
    "  smlad r7, r10, lr, r7\n"
    "  smlad r7, r11, r12, r7\n"
    "  ldr r12, [r1], #4\n"
    "  lsr r12, r12, r3\n"
    "  sxtb16 lr, r12\n"
    "  sxtb16 r12, r12, ror #8\n"
    "  smlad r4, r8, lr, r4\n"
    "  smlad r4, r9, r12, r4\n"
    "  smlad r6, r10, lr, r6\n"
    "  smlad r6, r11, r12, r6\n"
    "5:\n"
    "  .endif\n"
    "  ldm sp, {r8-r12, lr}\n"
    "  ldrd r0, r3, [r8], #8\n"
    "  .if \\rq == 0\n"
    "  smmla r4, r4, r0, r12\n"
    "  smmla r6, r6, r0, r12\n"
    "  smmla r5, r5, r3, r12\n"
    "  smmla r7, r7, r3, r12\n"
    "  asr r4, r4, lr\n"
    "  asr r5, r5, lr\n"
    "  asr r6, r6, lr\n"
    "  asr r7, r7, lr\n"
    "  .else\n"
    "  smmulr r4, r4, r0\n"
    "  smmulr r6, r6, r0\n"
    "  smmulr r5, r5, r3\n"
    "  smmulr r7, r7, r3\n"
    "  .endif\n"
    "  .if \\relu\n"
    "  usat r4, #7, r4\n"
    "  usat r5, #7, r5\n"
    "  usat r6, #7, r6\n"
    "  usat r7, #7, r7\n"
    "  orr r4, r4, r5, lsl #8\n"
    "  orr r6, r6, r7, lsl #8\n"
    "  strh r6, [r10, r11]\n"
    "  strh r4, [r10], #2\n"
    "  .else\n"
    "  ssat r4, #8, r4\n"
    "  ssat r5, #8, r5\n"
    "  ssat r6, #8, r6\n"
    "  ssat r7, #8, r7\n"
    "  bfi r4, r5, #8, #8\n"
    "  bfi r4, r6, #16, #8\n"
    "  bfi r4, r7, #24, #8\n"
    "  ldrd r5, r6, [sp, #44]\n"
    "  ssub8 r7, r4, r5\n"
    "  sel r4, r4, r5\n"
    "  ssub8 r7, r6, r4\n"
    "  sel r4, r4, r6\n"
    "  lsr r5, r4, #16\n"
    "  strh r5, [r10, r11]\n"
    "  strh r4, [r10], #2\n"
    "  .endif\n"
    "  add r1, r1, r2\n"
    "  ldr lr, [sp, #32]\n"
    "  cmp r1, lr\n"
    "  bne 1b\n"
    "  add sp, sp, #64\n"
    "  pop {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    "MNV2_PWK mnv2_dsp_mac_hi_relu, 0, 1, 0\n"
    "MNV2_PWK mnv2_dsp_mac_hi_lin, 0, 0, 0\n"
    "MNV2_PWK mnv2_dsp_mac_32_relu, 1, 1, 0\n"
    "MNV2_PWK mnv2_dsp_mac_32_lin, 1, 0, 0\n"
    "MNV2_PWK mnv2_dsp_mac_hi_relu_g, 0, 1, 1\n"
    "MNV2_PWK mnv2_dsp_mac_hi_lin_g, 0, 0, 1\n"
    "MNV2_PWK mnv2_dsp_mac_32_relu_g, 1, 1, 1\n"
    "MNV2_PWK mnv2_dsp_mac_32_lin_g, 1, 0, 1\n"
    ".purgem MNV2_PWK\n"
    ".purgem MNV2_MACCHUNK\n"
    ".popsection\n");

typedef void (*mac_fn)(const mac_job_t *);
void mnv2_dsp_mac_hi_relu(const mac_job_t *);
void mnv2_dsp_mac_hi_lin(const mac_job_t *);
void mnv2_dsp_mac_32_relu(const mac_job_t *);
void mnv2_dsp_mac_32_lin(const mac_job_t *);
void mnv2_dsp_mac_hi_relu_g(const mac_job_t *);
void mnv2_dsp_mac_hi_lin_g(const mac_job_t *);
void mnv2_dsp_mac_32_relu_g(const mac_job_t *);
void mnv2_dsp_mac_32_lin_g(const mac_job_t *);

/* The assembly core for K (>= 4), or NULL where the C code runs (shift < 32). */
static mac_fn mac_pick(int mode, int relu, int32_t K)
{
    static const mac_fn fns[2][2][2] = {
        {{mnv2_dsp_mac_hi_lin, mnv2_dsp_mac_hi_relu}, {mnv2_dsp_mac_32_lin, mnv2_dsp_mac_32_relu}},
        {{mnv2_dsp_mac_hi_lin_g, mnv2_dsp_mac_hi_relu_g}, {mnv2_dsp_mac_32_lin_g, mnv2_dsp_mac_32_relu_g}},
    };
    if (mode == RQ_GEN || K < 4) return NULL;
    int gen = (K & 7) != 0;
    return fns[gen][mode == RQ_32][relu];
}

static void mac_job_init(mac_job_t *j, int32_t K, int32_t shift, int32_t lo, int32_t hi, const int32_t *xs)
{
    j->rnd = shift >= 33 ? (int32_t)1 << (shift - 33) : 0;
    j->k = shift - 32;
    j->xs = xs;
    j->n8 = K >> 3;
    j->K = K;
    j->lo4 = rep4(lo);
    j->hi4 = rep4(hi);
    j->has4 = K & 4;
    j->taild = (K & 3) ? 4 - (K & 3) : 0;
    j->tailsh = 8 * j->taild;
}

/* The last output channel of an odd count, for one pixel pair (any mode; rows o - 1 and o). */
static void __attribute__((noinline)) last_channel(const int32_t *xs, const int8_t *row_prev, int32_t K,
                                                   int32_t bias, int32_t m, int32_t shift, int relu, int32_t lo,
                                                   int32_t hi, int8_t *o0, int8_t *o1)
{
    int32_t acc[4];
    rq_t r = rq_make(shift);
    dot2x2(xs, row_prev, K, bias, bias, acc);
    int mode = rq_mode(shift);
    o0[0] = (int8_t)rq_one(acc[1], m, mode, r, relu, lo, hi);
    if (o1) o1[0] = (int8_t)rq_one(acc[3], m, mode, r, relu, lo, hi);
}

/* ---------------------------------------------------------------------------------------------- */
/* Pointwise                                                                                        */

ALWAYS_INLINE void pw_body(const int8_t *in, int32_t pixels, int32_t cin, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, int32_t shift, int32_t lo, int32_t hi, int32_t cout, int8_t *out,
                           int32_t *xs, const int mode, const int relu)
{
    rq_t r = rq_make(shift);
    uint32_t lo4 = rep4(lo), hi4 = rep4(hi);
    for (int32_t p = 0; p < pixels; p += 2) {
        const int8_t *x0 = in + p * cin;
        int has1 = p + 1 < pixels;
        to_pairs2(xs, x0, has1 ? x0 + cin : x0, cin);
        int8_t *o0 = out + p * cout, *o1 = has1 ? o0 + cout : NULL;
        const int8_t *wo = w;
        int32_t o = 0;
        for (; o + 2 <= cout; o += 2) {
            int32_t acc[4];
            dot2x2(xs, wo, cin, bias[o], bias[o + 1], acc);
            store2x2(acc, mult + o, mode, r, relu, lo, hi, lo4, hi4, o0 + o, o1 ? o1 + o : NULL, 1);
            wo += 2 * cin;
        }
        if (o < cout) {
            /* the last channel alone: its row twice (the second one unused; in bounds) */
            int32_t acc[4];
            dot2x2(xs, wo - cin, cin, bias[o], bias[o], acc);
            int32_t t[4] = {acc[1], acc[1], acc[3], acc[3]};
            store2x2(t, mult + o, mode, r, relu, lo, hi, lo4, hi4, o0 + o, o1 ? o1 + o : NULL, 0);
        }
    }
}

/* One instantiation per requantization mode and clamp kind. */
#define DISPATCH(body, ...)                                                                        \
    do {                                                                                           \
        int m_ = rq_mode(shift);                                                                   \
        if (relu_) {                                                                               \
            if (m_ == RQ_HI) body(__VA_ARGS__, RQ_HI, 1);                                          \
            else if (m_ == RQ_32) body(__VA_ARGS__, RQ_32, 1);                                     \
            else body(__VA_ARGS__, RQ_GEN, 1);                                                     \
        } else {                                                                                   \
            if (m_ == RQ_HI) body(__VA_ARGS__, RQ_HI, 0);                                          \
            else if (m_ == RQ_32) body(__VA_ARGS__, RQ_32, 0);                                     \
            else body(__VA_ARGS__, RQ_GEN, 0);                                                     \
        }                                                                                          \
    } while (0)

void mnv2_pw_s8_dsp(MNV2_PW_ARGS)
{
    int kind = clamp_kind(lo, hi);
    if (kind < 0 || cin <= 0 || cout < 2) {
        mnv2_pw_s8_portable(in, pixels, cin, w, bias, mult, shift, lo, hi, cout, out, scratch);
        return;
    }
    int relu_ = kind == 0;
    mac_fn fn = mac_pick(rq_mode(shift), relu_, cin);
    if (fn == NULL) {
        DISPATCH(pw_body, in, pixels, cin, w, bias, mult, shift, lo, hi, cout, out, (int32_t *)scratch);
        return;
    }
    int32_t *xs = (int32_t *)scratch;
    mac_job_t job;
    mac_job_init(&job, cin, shift, lo, hi, xs);
    job.w = w;
    job.wend = w + (cout & ~1) * cin;
    for (int32_t p = 0; p < pixels; p += 2) {
        const int8_t *x0 = in + p * cin;
        int has1 = p + 1 < pixels;
        to_pairs2(xs, x0, has1 ? x0 + cin : x0, cin);
        int8_t *o0 = out + p * cout;
        job.mult = mult;
        job.bias = bias;
        job.o0 = o0;
        job.o1_off = has1 ? cout : 0;
        fn(&job);
        if (cout & 1)
            last_channel(xs, w + (cout - 2) * cin, cin, bias[cout - 1], mult[cout - 1], shift, relu_, lo, hi,
                         o0 + cout - 1, has1 ? o0 + 2 * cout - 1 : NULL);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Stem: dense k x k convolution through an int16 im2col of two output pixels and the 2x2 core.     */

/* memcpy for the short rows of the im2col (newlib's memcpy goes byte by byte): 32-bit words, any
 * alignment, then bytes. */
ALWAYS_INLINE void copy_short(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        uint32_t v = ld32(src);
        memcpy(dst, &v, 4);
    }
    for (; n > 0; --n) *dst++ = *src++;
}

ALWAYS_INLINE void im2col_px(int8_t *col, const int8_t *in, int32_t h, int32_t w, int32_t cin, int32_t k,
                             int32_t iy0, int32_t ix0)
{
    int32_t rowlen = k * cin;
    for (int32_t ky = 0; ky < k; ++ky) {
        int32_t iy = iy0 + ky;
        int8_t *dst = col + ky * rowlen;
        if (iy < 0 || iy >= h) {
            for (int32_t i = 0; i < rowlen; ++i) dst[i] = 0;
            continue;
        }
        if (ix0 >= 0 && ix0 + k <= w) {
            copy_short(dst, in + (iy * w + ix0) * cin, rowlen);
            continue;
        }
        for (int32_t kx = 0; kx < k; ++kx) {
            int32_t ix = ix0 + kx;
            if (ix < 0 || ix >= w) {
                for (int32_t i = 0; i < cin; ++i) dst[kx * cin + i] = 0;
            } else {
                copy_short(dst + kx * cin, in + (iy * w + ix) * cin, cin);
            }
        }
    }
}

ALWAYS_INLINE void conv_body(const int8_t *in, int32_t h, int32_t w, int32_t cin, const int8_t *weights, int32_t k,
                             int32_t stride, int32_t pad, const int32_t *bias, const int32_t *mult, int32_t shift,
                             int32_t lo, int32_t hi, int32_t cout, int8_t *out, int32_t *xs, int8_t *col,
                             const int mode, const int relu)
{
    rq_t r = rq_make(shift);
    uint32_t lo4 = rep4(lo), hi4 = rep4(hi);
    int32_t K = k * k * cin;
    int32_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    int32_t npx = oh * ow;
    for (int32_t p = 0; p < npx; p += 2) {
        int has1 = p + 1 < npx;
        int32_t oy = p / ow, ox = p - oy * ow;
        im2col_px(col, in, h, w, cin, k, oy * stride - pad, ox * stride - pad);
        if (has1) {
            int32_t p1 = p + 1, oy1 = p1 / ow, ox1 = p1 - oy1 * ow;
            im2col_px(col + K, in, h, w, cin, k, oy1 * stride - pad, ox1 * stride - pad);
        }
        to_pairs2(xs, col, has1 ? col + K : col, K);
        int8_t *o0 = out + p * cout, *o1 = has1 ? o0 + cout : NULL;
        const int8_t *wo = weights;
        int32_t o = 0;
        for (; o + 2 <= cout; o += 2) {
            int32_t acc[4];
            dot2x2(xs, wo, K, bias[o], bias[o + 1], acc);
            store2x2(acc, mult + o, mode, r, relu, lo, hi, lo4, hi4, o0 + o, o1 ? o1 + o : NULL, 1);
            wo += 2 * K;
        }
        if (o < cout) {
            int32_t acc[4];
            dot2x2(xs, wo - K, K, bias[o], bias[o], acc);
            int32_t t[4] = {acc[1], acc[1], acc[3], acc[3]};
            store2x2(t, mult + o, mode, r, relu, lo, hi, lo4, hi4, o0 + o, o1 ? o1 + o : NULL, 0);
        }
    }
}

void mnv2_conv_s8_dsp(MNV2_CONV_ARGS)
{
    int kind = clamp_kind(lo, hi);
    int32_t K = k * k * cin;
    /* scratch: the int16 pairs of two pixels (K rounded up to 4), then the int8 im2col of two pixels */
    int32_t *xs = (int32_t *)scratch;
    int8_t *col = (int8_t *)scratch + 4 * ((K + 3) / 4 * 4);
    if (kind < 0 || cout == 1 || K <= 0) {
        /* (cout == 1: the 2-channel core would read a second row that does not exist) */
        mnv2_conv_s8_portable(in, h, w, cin, weights, k, stride, pad, bias, mult, shift, lo, hi, cout, out, scratch);
        return;
    }
    int relu_ = kind == 0;
    mac_fn fn = mac_pick(rq_mode(shift), relu_, K);
    if (fn == NULL) {
        DISPATCH(conv_body, in, h, w, cin, weights, k, stride, pad, bias, mult, shift, lo, hi, cout, out, xs, col);
        return;
    }
    mac_job_t job;
    mac_job_init(&job, K, shift, lo, hi, xs);
    job.w = weights;
    job.wend = weights + (cout & ~1) * K;
    /* the two pixels' columns Kp apart, zero-padded to Kp: whole words for to_pairs2 */
    int32_t Kp = (K + 3) & ~3;
    for (int32_t i = K; i < 2 * Kp; ++i) col[i] = 0;
    int32_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    int32_t npx = oh * ow;
    for (int32_t p = 0; p < npx; p += 2) {
        int has1 = p + 1 < npx;
        int32_t oy = p / ow, ox = p - oy * ow;
        im2col_px(col, in, h, w, cin, k, oy * stride - pad, ox * stride - pad);
        if (has1) {
            int32_t p1 = p + 1, oy1 = p1 / ow, ox1 = p1 - oy1 * ow;
            im2col_px(col + Kp, in, h, w, cin, k, oy1 * stride - pad, ox1 * stride - pad);
        }
        to_pairs2(xs, col, has1 ? col + Kp : col, Kp);
        int8_t *o0 = out + p * cout;
        job.mult = mult;
        job.bias = bias;
        job.o0 = o0;
        job.o1_off = has1 ? cout : 0;
        fn(&job);
        if (cout & 1)
            last_channel(xs, weights + (cout - 2) * K, K, bias[cout - 1], mult[cout - 1], shift, relu_, lo, hi,
                         o0 + cout - 1, has1 ? o0 + 2 * cout - 1 : NULL);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Depthwise 3x3, one output row: the C path, for clamps other than [0, 127] and shift < 32 (the fast
 * path for ReLU layers follows below).
 *
 * Per group of four channels, the three input rows become int16 pairs of horizontally adjacent
 * pixels in scratch: word S[r][q][c] = (xp[2q], xp[2q+1]) of channel c of the group, where xp is the
 * row padded with one zero on each side (xp[i] = row[i - 1]). Two loads of adjacent pixels (four
 * channels each) give all four channels' pairs: two __sxtb16 per pixel and one pkhbt / pkhtb per
 * pair. Then per channel and per row, with W01 = (w0, w1) and W12 = (w1, w2):
 *   stride 1, outputs 2q and 2q+1 from P0 = S[r][q], P1 = S[r][q+1]:
 *     y(2q)   += smlad(P0, W01) + smlabt(P1, W12)        (x0 w0 + x1 w1, x2 w2)
 *     y(2q+1) += smlatb(P0, W01) + smlad(P1, W12)        (x1 w0, x2 w1 + x3 w2)
 *   stride 2, output q:  y(q) += smlad(P0, W01) + smlabt(P1, W12).
 * P1 is the next step's P0 (one load per row and step).
 */
#define DW_GROUP_WORDS(in_w) (4 * ((in_w) / 2 + 3))

ALWAYS_INLINE void dw_convert_row(int32_t *S, const int8_t *row, int32_t in_w, int32_t channels, int32_t q_n)
{
    if (row == NULL) {
        memset(S, 0, (size_t)q_n * 16);
        return;
    }
    /* q = 0: (pad, x[0]) */
    uint32_t b = ld32(row);
    int32_t b02 = sxtb16(b), b13 = sxtb16_ror8(b);
    S[0] = (int32_t)((uint32_t)b02 << 16);
    S[1] = (int32_t)((uint32_t)b13 << 16);
    S[2] = (int32_t)((uint32_t)b02 & 0xFFFF0000u);
    S[3] = (int32_t)((uint32_t)b13 & 0xFFFF0000u);
    int32_t q = 1;
    const int8_t *p = row + channels; /* pixel 2q - 1 */
    int32_t c2 = 2 * channels;
    int32_t full = (in_w - 1) / 2; /* q with pixel 2q <= in_w - 1 */
    int32_t *s = S + 4;
    for (; q <= full; ++q) {
        uint32_t a = ld32(p), bb = ld32(p + channels);
        int32_t a02 = sxtb16(a), a13 = sxtb16_ror8(a), x02 = sxtb16(bb), x13 = sxtb16_ror8(bb);
        s[0] = pkhbt(a02, x02);
        s[1] = pkhbt(a13, x13);
        s[2] = pkhtb(x02, a02);
        s[3] = pkhtb(x13, a13);
        s += 4;
        p += c2;
    }
    /* q with pixel 2q - 1 <= in_w - 1 < 2q: (x[in_w - 1], pad) when in_w is even */
    if (q < q_n && 2 * q - 1 <= in_w - 1) {
        uint32_t a = ld32(p);
        int32_t a02 = sxtb16(a), a13 = sxtb16_ror8(a);
        s[0] = (int32_t)((uint32_t)a02 & 0xFFFFu);
        s[1] = (int32_t)((uint32_t)a13 & 0xFFFFu);
        s[2] = (int32_t)((uint32_t)a02 >> 16);
        s[3] = (int32_t)((uint32_t)a13 >> 16);
        s += 4;
        ++q;
    }
    for (; q < q_n; ++q) {
        s[0] = s[1] = s[2] = s[3] = 0;
        s += 4;
    }
}

ALWAYS_INLINE int32_t w_pair(const int8_t *w, int32_t channels, int32_t i0, int32_t i1)
{
    return pkhbt(w[i0 * channels], w[i1 * channels]);
}

ALWAYS_INLINE void dw_channel(const int32_t *S, int32_t rs, const int8_t *w, int32_t channels, int32_t stride,
                              int32_t out_w, int32_t bias, int32_t m, int8_t *out, const int mode, rq_t r,
                              const int relu, int32_t lo, int32_t hi)
{
    int32_t W01a = w_pair(w, channels, 0, 1), W12a = w_pair(w, channels, 1, 2);
    int32_t W01b = w_pair(w, channels, 3, 4), W12b = w_pair(w, channels, 4, 5);
    int32_t W01c = w_pair(w, channels, 6, 7), W12c = w_pair(w, channels, 7, 8);
    const int32_t *s0 = S, *s1 = S + rs, *s2 = S + 2 * rs;
    int32_t P0a = s0[0], P0b = s1[0], P0c = s2[0];
    if (stride == 1) {
        int32_t ox = 0;
        for (; ox + 2 <= out_w; ox += 2) {
            int32_t P1a = s0[4], P1b = s1[4], P1c = s2[4];
            s0 += 4; s1 += 4; s2 += 4;
            int32_t y0 = smlad(P0a, W01a, bias), y1 = __smlatb((int16x2_t)P0a, (int16x2_t)W01a, bias);
            y0 = __smlabt((int16x2_t)P1a, (int16x2_t)W12a, y0); y1 = smlad(P1a, W12a, y1);
            y0 = smlad(P0b, W01b, y0); y1 = __smlatb((int16x2_t)P0b, (int16x2_t)W01b, y1);
            y0 = __smlabt((int16x2_t)P1b, (int16x2_t)W12b, y0); y1 = smlad(P1b, W12b, y1);
            y0 = smlad(P0c, W01c, y0); y1 = __smlatb((int16x2_t)P0c, (int16x2_t)W01c, y1);
            y0 = __smlabt((int16x2_t)P1c, (int16x2_t)W12c, y0); y1 = smlad(P1c, W12c, y1);
            out[0] = (int8_t)rq_one(y0, m, mode, r, relu, lo, hi);
            out[channels] = (int8_t)rq_one(y1, m, mode, r, relu, lo, hi);
            out += 2 * channels;
            P0a = P1a; P0b = P1b; P0c = P1c;
        }
        if (ox < out_w) {
            int32_t P1a = s0[4], P1b = s1[4], P1c = s2[4];
            int32_t y0 = smlad(P0a, W01a, bias);
            y0 = __smlabt((int16x2_t)P1a, (int16x2_t)W12a, y0);
            y0 = smlad(P0b, W01b, y0);
            y0 = __smlabt((int16x2_t)P1b, (int16x2_t)W12b, y0);
            y0 = smlad(P0c, W01c, y0);
            y0 = __smlabt((int16x2_t)P1c, (int16x2_t)W12c, y0);
            out[0] = (int8_t)rq_one(y0, m, mode, r, relu, lo, hi);
        }
    } else {
        for (int32_t ox = 0; ox < out_w; ++ox) {
            int32_t P1a = s0[4], P1b = s1[4], P1c = s2[4];
            s0 += 4; s1 += 4; s2 += 4;
            int32_t y0 = smlad(P0a, W01a, bias);
            y0 = __smlabt((int16x2_t)P1a, (int16x2_t)W12a, y0);
            y0 = smlad(P0b, W01b, y0);
            y0 = __smlabt((int16x2_t)P1b, (int16x2_t)W12b, y0);
            y0 = smlad(P0c, W01c, y0);
            y0 = __smlabt((int16x2_t)P1c, (int16x2_t)W12c, y0);
            out[0] = (int8_t)rq_one(y0, m, mode, r, relu, lo, hi);
            out += channels;
            P0a = P1a; P0b = P1b; P0c = P1c;
        }
    }
}

/* Channels that do not fill a group of four: straight from the int8 rows. */
ALWAYS_INLINE void dw_channel_scalar(const int8_t *const rows[3], int32_t in_w, int32_t channels, int32_t stride,
                                     const int8_t *w, int32_t c, int32_t bias, int32_t m, int8_t *out, const int mode,
                                     rq_t r, const int relu, int32_t lo, int32_t hi)
{
    int32_t out_w = (in_w - 1) / stride + 1;
    for (int32_t ox = 0; ox < out_w; ++ox) {
        int32_t acc = bias;
        for (int32_t ky = 0; ky < 3; ++ky) {
            const int8_t *row = rows[ky];
            if (row == NULL) continue;
            for (int32_t kx = 0; kx < 3; ++kx) {
                int32_t ix = ox * stride - 1 + kx;
                if (ix < 0 || ix >= in_w) continue;
                acc += (int32_t)row[ix * channels + c] * w[(ky * 3 + kx) * channels + c];
            }
        }
        out[ox * channels + c] = (int8_t)rq_one(acc, m, mode, r, relu, lo, hi);
    }
}

ALWAYS_INLINE void dw_body(const int8_t *const rows[3], int32_t in_w, int32_t channels, int32_t stride,
                           const int8_t *w, const int32_t *bias, const int32_t *mult, int32_t shift, int32_t lo,
                           int32_t hi, int8_t *out, int32_t *S, const int mode, const int relu)
{
    rq_t r = rq_make(shift);
    int32_t out_w = (in_w - 1) / stride + 1;
    int32_t q_n = in_w / 2 + 3;          /* pairs per row: up to (in_w + 1) / 2 read, plus lookahead */
    int32_t rs = 4 * q_n;                /* words per row */
    int32_t groups = channels >> 2;
    for (int32_t g = 0; g < groups; ++g) {
        int32_t c0 = 4 * g;
        for (int32_t ky = 0; ky < 3; ++ky)
            dw_convert_row(S + ky * rs, rows[ky] ? rows[ky] + c0 : NULL, in_w, channels, q_n);
        for (int32_t c = 0; c < 4; ++c)
            dw_channel(S + c, rs, w + c0 + c, channels, stride, out_w, bias[c0 + c], mult[c0 + c], out + c0 + c,
                       mode, r, relu, lo, hi);
    }
    for (int32_t c = 4 * groups; c < channels; ++c)
        dw_channel_scalar(rows, in_w, channels, stride, w, c, bias[c], mult[c], out, mode, r, relu, lo, hi);
}

/* ---------------------------------------------------------------------------------------------- */
/* Depthwise 3x3, fast path (ReLU clamp [0, 127], shift >= 32): one output row in two passes.
 *
 * Rows a = rows[0], b = rows[1] are paired vertically, row c = rows[2] horizontally:
 *   V(i)  = (a[i], b[i])            (int16 pair of one channel; zero outside 0 <= i < in_w)
 *   Pc(q) = (c[2q - 1], c[2q])
 * and per channel the weights  Wab_k = (w[0][k], w[1][k]) (k = 0..2), Wc01 = (w[2][0], w[2][1]),
 * Wc12 = (w[2][1], w[2][2]). Output x (taps x - 1 .. x + 1):
 *   y(2q)     = Pc(q).Wc01 + c[2q+1] w[2][2]   + V(2q-1).Wab0 + V(2q).Wab1 + V(2q+1).Wab2
 *   y(2q + 1) = c[2q] w[2][0] + Pc(q+1).Wc12    + V(2q).Wab0   + V(2q+1).Wab1 + V(2q+2).Wab2
 * i.e. 10 SMLAD-type instructions per two outputs at stride 1 and 5 per output at stride 2.
 * Pass 1 (C): per channel a stream of blocks H(q) = [Pc(q), V(2q-1), V(2q)], q = 0..NH-1, built four
 * channels at a time (one 32-bit load per row and pixel, PKHBT/PKHTB + SXTB16), and a table of the
 * channel's weight pairs, bias and multiplier. Pass 2 (assembly): per channel, H(q) and H(q+1) with
 * one LDM, the weights in registers or on the stack frame. A NULL row is replaced by a real one with
 * zero weights. */
typedef struct {
    int32_t rnd;            /* 0: 2^(shift-33) */
    int32_t k;              /* 4: shift - 32 */
    int32_t C;              /* 8 */
    int32_t end;            /* 12: (per channel) */
    int32_t wab[3];         /* 16: (per channel, stride 1) */
    int32_t pad0;           /* 28 */
    const int32_t *S;       /* 32: stream of the current channel */
    int32_t SSb;            /* 36: stream stride, bytes */
    const int32_t *tab;     /* 40: 7 words per channel: Wab0 Wab1 Wab2 bias Wc01 Wc12 mult */
    int8_t *out;            /* 44 */
    int32_t nch;            /* 48 */
    int32_t span;           /* 52: bytes of out the main loop covers (per channel) */
    int32_t tail;           /* 56: stride 1: one more output after the pairs */
    int32_t pad1;           /* 60 */
} dw_job_t;

__asm__(
    ".pushsection .text.mnv2_dsp_dw,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro MNV2_DWRQ y, m, rnd, k, rq32\n"
    "  .if \\rq32\n"
    "  smmulr \\y, \\y, \\m\n"
    "  .else\n"
    "  smmla \\y, \\y, \\m, \\rnd\n"
    "  asr \\y, \\y, \\k\n"
    "  .endif\n"
    "  usat \\y, #7, \\y\n"
    ".endm\n"
    ".macro MNV2_DWK name, s2, rq32\n"
    "  .align 2\n"
    "  .global \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, %function\n"
    "  .thumb_func\n"
    "\\name:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #64\n"
    "  ldm r0!, {r1-r12}\n"
    "  stm sp, {r1-r12}\n"
    "  ldm r0, {r1-r4}\n"
    "  add r5, sp, #48\n"
    "  stm r5, {r1-r4}\n"
    "10:\n"
    "  ldr r0, [sp, #32]\n"
    "  ldr r9, [sp, #36]\n"
    "  add r9, r0, r9\n"
    "  str r9, [sp, #32]\n"
    "  ldr r1, [sp, #44]\n"
    "  add r9, r1, #1\n"
    "  str r9, [sp, #44]\n"
    "  ldr r9, [sp, #52]\n"
    "  add r10, r1, r9\n"
    "  str r10, [sp, #12]\n"
    "  ldr r10, [sp, #40]\n"
    "  ldm r10!, {r2-r8}\n"
    "  str r10, [sp, #40]\n"
    "  .if \\s2\n"
    /* r2-r4 Wab0-2, r5 bias, r6 Wc01, r7 Wc12, r8 mult; data r9 Pc(q) r10 V(2q-1) r11 V(2q) r12 Pc(q+1)
       lr V(2q+1) */
    "11:\n"
    "  ldm r0, {r9-r12, lr}\n"
    "  add r0, r0, #12\n"
    "  smlad r9, r9, r6, r5\n"
    "  smlabt r9, r12, r7, r9\n"
    "  smlad r9, r10, r2, r9\n"
    "  smlad r9, r11, r3, r9\n"
    "  smlad r9, lr, r4, r9\n"
    "  ldm sp, {r10-r12, lr}\n"
    "  MNV2_DWRQ r9, r8, r10, r11, \\rq32\n"
    "  strb r9, [r1]\n"
    "  add r1, r1, r12\n"
    "  cmp r1, lr\n"
    "  bne 11b\n"
    "  .else\n"
    /* r5 bias, r6 Wc01, r7 Wc12, r8 mult; Wab0-2 on the frame; data r2 Pc(q) r3 V(2q-1) r4 V(2q)
       r9 Pc(q+1) r10 V(2q+1) r11 V(2q+2); r12 y(2q), lr y(2q+1) */
    "  add r10, sp, #16\n"
    "  stm r10, {r2-r4}\n"
    "  cmp r9, #0\n"
    "  beq 12f\n"
    "11:\n"
    "  ldm r0, {r2-r4, r9-r11}\n"
    "  add r0, r0, #12\n"
    "  smlad r12, r2, r6, r5\n"
    "  smlatb lr, r2, r6, r5\n"
    "  smlabt r12, r9, r7, r12\n"
    "  smlad lr, r9, r7, lr\n"
    "  ldrd r2, r9, [sp, #16]\n"
    "  smlad r12, r3, r2, r12\n"
    "  smlad lr, r4, r2, lr\n"
    "  smlad r12, r4, r9, r12\n"
    "  smlad lr, r10, r9, lr\n"
    "  ldr r2, [sp, #24]\n"
    "  smlad r12, r10, r2, r12\n"
    "  smlad lr, r11, r2, lr\n"
    "  ldm sp, {r2-r4, r9}\n"
    "  MNV2_DWRQ r12, r8, r2, r3, \\rq32\n"
    "  MNV2_DWRQ lr, r8, r2, r3, \\rq32\n"
    "  strb lr, [r1, r4]\n"
    "  strb r12, [r1]\n"
    "  add r1, r1, r4, lsl #1\n"
    "  cmp r1, r9\n"
    "  bne 11b\n"
    "12:\n"
    "  ldr r9, [sp, #56]\n"
    "  cmp r9, #0\n"
    "  beq 13f\n"
    "  ldm r0, {r2-r4, r9-r10}\n"
    "  smlad r12, r2, r6, r5\n"
    "  smlabt r12, r9, r7, r12\n"
    "  ldrd r2, r9, [sp, #16]\n"
    "  smlad r12, r3, r2, r12\n"
    "  smlad r12, r4, r9, r12\n"
    "  ldr r2, [sp, #24]\n"
    "  smlad r12, r10, r2, r12\n"
    "  ldm sp, {r2-r3}\n"
    "  MNV2_DWRQ r12, r8, r2, r3, \\rq32\n"
    "  strb r12, [r1]\n"
    "13:\n"
    "  .endif\n"
    "  ldr r9, [sp, #48]\n"
    "  subs r9, r9, #1\n"
    "  str r9, [sp, #48]\n"
    "  bne 10b\n"
    "  add sp, sp, #64\n"
    "  pop {r4-r11, pc}\n"
    "  .size \\name, . - \\name\n"
    ".endm\n"
    "MNV2_DWK mnv2_dsp_dw_s1_hi, 0, 0\n"
    "MNV2_DWK mnv2_dsp_dw_s1_32, 0, 1\n"
    "MNV2_DWK mnv2_dsp_dw_s2_hi, 1, 0\n"
    "MNV2_DWK mnv2_dsp_dw_s2_32, 1, 1\n"
    ".purgem MNV2_DWK\n"
    ".purgem MNV2_DWRQ\n"
    ".popsection\n");

typedef void (*dw_fn)(const dw_job_t *);
void mnv2_dsp_dw_s1_hi(const dw_job_t *);
void mnv2_dsp_dw_s1_32(const dw_job_t *);
void mnv2_dsp_dw_s2_hi(const dw_job_t *);
void mnv2_dsp_dw_s2_32(const dw_job_t *);

/* (lo, hi) of two 32-bit words of four int8 channels: lo = (p0, q0, p1, q1), hi = (p2, q2, p3, q3) as
 * bytes, so sxtb16(lo) = channel 0's pair (p, q), sxtb16_ror8(lo) channel 1's, hi channels 2 and 3. */
#define DW_PAIR4(s, j, p, q)                                                                       \
    do {                                                                                           \
        uint32_t lo_ = ((uint32_t)(p) & 0xFFFFu) | ((uint32_t)(q) << 16);                          \
        uint32_t hi_ = ((uint32_t)(q) & 0xFFFF0000u) | ((uint32_t)(p) >> 16);                      \
        (s)[0][j] = sxtb16(lo_);                                                                   \
        (s)[1][j] = sxtb16_ror8(lo_);                                                              \
        (s)[2][j] = sxtb16(hi_);                                                                   \
        (s)[3][j] = sxtb16_ror8(hi_);                                                              \
    } while (0)

ALWAYS_INLINE uint32_t pkhbt16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

ALWAYS_INLINE uint32_t pkhtb16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

ALWAYS_INLINE void st3(int32_t *s, int32_t x, int32_t y, int32_t z)
{
    s[0] = x; s[1] = y; s[2] = z;
}

/* One block H(q) of four channels from the words of pixels 2q - 1 (a1, b1, c1) and 2q (a2, b2, c2). */
ALWAYS_INLINE void dw_block4(int32_t *s0, int32_t SSb, uint32_t a1, uint32_t b1, uint32_t c1, uint32_t a2,
                             uint32_t b2, uint32_t c2)
{
    uint32_t loc = pkhbt16(c1, c2), lo1 = pkhbt16(a1, b1), lo2 = pkhbt16(a2, b2);
    uint32_t hic = pkhtb16(c2, c1), hi1 = pkhtb16(b1, a1), hi2 = pkhtb16(b2, a2);
    int8_t *s = (int8_t *)s0;
    st3((int32_t *)s, sxtb16(loc), sxtb16(lo1), sxtb16(lo2));
    s += SSb;
    st3((int32_t *)s, sxtb16_ror8(loc), sxtb16_ror8(lo1), sxtb16_ror8(lo2));
    s += SSb;
    st3((int32_t *)s, sxtb16(hic), sxtb16(hi1), sxtb16(hi2));
    s += SSb;
    st3((int32_t *)s, sxtb16_ror8(hic), sxtb16_ror8(hi1), sxtb16_ror8(hi2));
}

static void __attribute__((noinline)) dw_fast(const int8_t *const rows[3], int32_t in_w, int32_t channels, int32_t stride, const int8_t *w,
                    const int32_t *bias, const int32_t *mult, int32_t shift, int8_t *out, void *scratch, dw_fn fn)
{
    int32_t C = channels, nch = C & ~3;
    int32_t out_w = (in_w - 1) / stride + 1;
    int32_t NH = stride == 1 ? (out_w + 1) / 2 + 1 : out_w + 1;
    int32_t SS = 3 * NH;
    int32_t *tab = (int32_t *)scratch;
    int32_t *S = tab + 7 * nch;
    /* a NULL row: another row's data with zero weights */
    const int8_t *any = rows[1] ? rows[1] : rows[0] ? rows[0] : rows[2];
    const int8_t *ra = rows[0] ? rows[0] : any, *rb = rows[1] ? rows[1] : any, *rc = rows[2] ? rows[2] : any;
    uint32_t za = rows[0] ? ~0u : 0, zb = rows[1] ? ~0u : 0, zc = rows[2] ? ~0u : 0;
    for (int32_t c0 = 0; c0 < nch; c0 += 4) {
        /* the weight table */
        uint32_t T[9];
        for (int t = 0; t < 9; ++t) T[t] = ld32(w + t * C + c0) & (t < 3 ? za : t < 6 ? zb : zc);
        int32_t p[4][5];
        DW_PAIR4(p, 0, T[0], T[3]);
        DW_PAIR4(p, 1, T[1], T[4]);
        DW_PAIR4(p, 2, T[2], T[5]);
        DW_PAIR4(p, 3, T[6], T[7]);
        DW_PAIR4(p, 4, T[7], T[8]);
        int32_t *e = tab + 7 * c0;
        for (int j = 0; j < 4; ++j, e += 7) {
            e[0] = p[j][0]; e[1] = p[j][1]; e[2] = p[j][2];
            e[3] = bias[c0 + j];
            e[4] = p[j][3]; e[5] = p[j][4];
            e[6] = mult[c0 + j];
        }
        /* the streams */
        int32_t *s = S + c0 * SS;
        int32_t SSb = 4 * SS;
        const int8_t *pa = ra + c0, *pb = rb + c0, *pc = rc + c0;
        dw_block4(s, SSb, 0, 0, 0, ld32(pa), ld32(pb), ld32(pc));
        s += 3;
        int32_t qfull = (in_w - 1) / 2; /* 2q <= in_w - 1 */
        if (qfull > NH - 1) qfull = NH - 1;
        const int8_t *a1 = pa + C, *b1 = pb + C, *c1 = pc + C;
        int32_t C2 = 2 * C;
        int32_t q = 1;
        for (; q <= qfull; ++q, s += 3) {
            dw_block4(s, SSb, ld32(a1), ld32(b1), ld32(c1), ld32(a1 + C), ld32(b1 + C), ld32(c1 + C));
            a1 += C2; b1 += C2; c1 += C2;
        }
        for (; q < NH; ++q, s += 3) {
            if (2 * q - 1 < in_w) dw_block4(s, SSb, ld32(a1), ld32(b1), ld32(c1), 0, 0, 0);
            else dw_block4(s, SSb, 0, 0, 0, 0, 0, 0);
            a1 += C2; b1 += C2; c1 += C2;
        }
    }
    dw_job_t job;
    job.rnd = shift >= 33 ? (int32_t)1 << (shift - 33) : 0;
    job.k = shift - 32;
    job.C = C;
    job.S = S;
    job.SSb = 4 * SS;
    job.tab = tab;
    job.out = out;
    job.nch = nch;
    job.span = stride == 1 ? (out_w / 2) * 2 * C : out_w * C;
    job.tail = stride == 1 ? out_w & 1 : 0;
    if (nch) fn(&job);
}

/* The channels after the last group of four (fast path only). */
static void __attribute__((noinline)) dw_rest(const int8_t *const rows[3], int32_t in_w, int32_t channels,
                                              int32_t stride, const int8_t *w, const int32_t *bias,
                                              const int32_t *mult, int32_t shift, int8_t *out)
{
    rq_t r = rq_make(shift);
    for (int32_t c = channels & ~3; c < channels; ++c) {
        if (rq_mode(shift) == RQ_HI)
            dw_channel_scalar(rows, in_w, channels, stride, w, c, bias[c], mult[c], out, RQ_HI, r, 1, 0, 127);
        else
            dw_channel_scalar(rows, in_w, channels, stride, w, c, bias[c], mult[c], out, RQ_32, r, 1, 0, 127);
    }
}

void mnv2_dw3x3_row_s8_dsp(MNV2_DW_ARGS)
{
    int kind = clamp_kind(lo, hi);
    if (kind < 0 || (stride != 1 && stride != 2) || in_w <= 0 || (!rows[0] && !rows[1] && !rows[2])) {
        mnv2_dw3x3_row_s8_portable(rows, in_w, channels, stride, w, bias, mult, shift, lo, hi, out, scratch);
        return;
    }
    int relu_ = kind == 0;
    int mode = rq_mode(shift);
    if (relu_ && mode != RQ_GEN) {
        static const dw_fn fns[2][2] = {{mnv2_dsp_dw_s1_hi, mnv2_dsp_dw_s1_32}, {mnv2_dsp_dw_s2_hi, mnv2_dsp_dw_s2_32}};
        dw_fast(rows, in_w, channels, stride, w, bias, mult, shift, out, scratch, fns[stride - 1][mode == RQ_32]);
        if (channels & 3) dw_rest(rows, in_w, channels, stride, w, bias, mult, shift, out);
        return;
    }
    DISPATCH(dw_body, rows, in_w, channels, stride, w, bias, mult, shift, lo, hi, out, (int32_t *)scratch);
}

/* ---------------------------------------------------------------------------------------------- */
/* Residual add: the 64-bit sum a*ma + b*mb + 2^(shift-1) (SMLAL), four elements per 32-bit load and
 * store; shift >= 32 needs only the high word. */

ALWAYS_INLINE int32_t add_one(int32_t x, int32_t y, int32_t ma, int32_t mb, int64_t round, int32_t shift)
{
    int64_t v = (int64_t)x * ma + (int64_t)y * mb + round;
    int32_t t;
    if (shift >= 32) {
        t = (int32_t)(v >> 32) >> (shift - 32);
    } else {
        int64_t u = v >> shift;
        t = u < -128 ? -128 : u > 127 ? 127 : (int32_t)u;
    }
    return __ssat(t, 8);
}

void mnv2_add_s8_dsp(MNV2_ADD_ARGS)
{
    if (shift < 32) {
        /* (what ptq.py gives for adds: shift 29..31) the portable loop is as fast as this one */
        mnv2_add_s8_portable(a, b, n, ma, mb, shift, out);
        return;
    }
    int64_t round = (int64_t)1 << (shift - 1);
    uint32_t lo4 = rep4(-127), hi4 = rep4(127);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t av = ld32(a + i), bv = ld32(b + i);
        uint32_t res = 0;
        for (int j = 0; j < 4; ++j) {
            int32_t t = add_one((int8_t)(av >> (8 * j)), (int8_t)(bv >> (8 * j)), ma, mb, round, shift);
            res |= ((uint32_t)t & 0xFFu) << (8 * j);
        }
        res = clamp4(res, lo4, hi4);
        memcpy(out + i, &res, 4);
    }
    for (; i < n; ++i) {
        int32_t t = add_one(a[i], b[i], ma, mb, round, shift);
        out[i] = (int8_t)(t < -127 ? -127 : t);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Global average pool: four channels per 32-bit load, summed as 16-bit pairs (__sxtab16) in runs of
 * at most 255 pixels (|sum| <= 255 * 128 = 32640 fits int16), then added up in 32 bits. */

void mnv2_avgpool_s8_dsp(MNV2_POOL_ARGS)
{
    int mode = rq_mode(shift);
    rq_t r = rq_make(shift);
    int32_t c = 0;
    for (; c + 4 <= channels; c += 4) {
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const int8_t *p = in + c;
        for (int32_t done = 0; done < pixels;) {
            int32_t run = pixels - done < 255 ? pixels - done : 255;
            int32_t e = 0, o = 0;
            for (int32_t i = 0; i < run; ++i) {
                uint32_t v = ld32(p);
                e = (int32_t)__sxtab16((int16x2_t)e, (int8x4_t)v);
                o = (int32_t)__sxtab16((int16x2_t)o, (int8x4_t)(v >> 8 | v << 24));
                p += channels;
            }
            s0 += (int16_t)e; s2 += e >> 16; s1 += (int16_t)o; s3 += o >> 16;
            done += run;
        }
        int32_t s[4] = {s0, s1, s2, s3};
        for (int j = 0; j < 4; ++j) {
            int32_t y;
            if (mode == RQ_HI) y = rq_raw(s[j], mult, RQ_HI, r);
            else if (mode == RQ_32) y = rq_raw(s[j], mult, RQ_32, r);
            else y = rq_raw(s[j], mult, RQ_GEN, r);
            y = __ssat(y, 8);
            out[c + j] = (int8_t)(y < -127 ? -127 : y);
        }
    }
    for (; c < channels; ++c) {
        int32_t acc = 0;
        for (int32_t p = 0; p < pixels; ++p) acc += in[p * channels + c];
        out[c] = (int8_t)mnv2_requant(acc, mult, shift, -127, 127);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Dense (classifier): four outputs at a time share each converted input word. */

void mnv2_dense_s8_dsp(MNV2_DENSE_ARGS)
{
    int32_t n4 = cin >> 2, rem = cin & 3;
    int32_t o = 0;
    for (; o + 4 <= cout; o += 4) {
        const int8_t *w0 = w + o * cin, *w1 = w0 + cin, *w2 = w1 + cin, *w3 = w2 + cin;
        int32_t a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
        const int8_t *x = in;
        for (int32_t j = 0; j < n4; ++j) {
            uint32_t xv = ld32(x);
            int32_t xe = sxtb16(xv), xo = sxtb16_ror8(xv);
            uint32_t v;
            v = ld32(w0); a0 = smlad(xe, sxtb16(v), a0); a0 = smlad(xo, sxtb16_ror8(v), a0);
            v = ld32(w1); a1 = smlad(xe, sxtb16(v), a1); a1 = smlad(xo, sxtb16_ror8(v), a1);
            v = ld32(w2); a2 = smlad(xe, sxtb16(v), a2); a2 = smlad(xo, sxtb16_ror8(v), a2);
            v = ld32(w3); a3 = smlad(xe, sxtb16(v), a3); a3 = smlad(xo, sxtb16_ror8(v), a3);
            x += 4; w0 += 4; w1 += 4; w2 += 4; w3 += 4;
        }
        for (int32_t i = 0; i < rem; ++i) {
            int32_t xi = x[i];
            a0 += xi * w0[i]; a1 += xi * w1[i]; a2 += xi * w2[i]; a3 += xi * w3[i];
        }
        out[o] = (float)a0 * scale[o];
        out[o + 1] = (float)a1 * scale[o + 1];
        out[o + 2] = (float)a2 * scale[o + 2];
        out[o + 3] = (float)a3 * scale[o + 3];
    }
    for (; o < cout; ++o) {
        const int8_t *wo = w + o * cin;
        int32_t acc = bias[o];
        int32_t j = 0;
        for (; j + 4 <= cin; j += 4) {
            uint32_t xv = ld32(in + j), v = ld32(wo + j);
            acc = smlad(sxtb16(xv), sxtb16(v), acc);
            acc = smlad(sxtb16_ror8(xv), sxtb16_ror8(v), acc);
        }
        for (; j < cin; ++j) acc += (int32_t)in[j] * wo[j];
        out[o] = (float)acc * scale[o];
    }
}

#endif /* __ARM_FEATURE_DSP */
