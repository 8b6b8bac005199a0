/* The Helium (MVE, Cortex-M55/M85) int8 kernels: bit-identical to nn_portable.c.
 *
 * Requantization in vectors, exact for shift >= 32 (shift < 32 takes the portable kernel):
 *   shift == 32: VRMULH (a*b + 2^31) >> 32;
 *   shift >= 33: VRSHL(VMULH(a, b), -(shift - 32)): VMULH is floor(a*b / 2^32), and
 *   floor((floor(P / 2^32) + 2^(s-1)) / 2^s) == floor((P + 2^(shift-1)) / 2^shift) for s = shift - 32;
 *   |VMULH| < 2^30 so VRSHL's rounding addition cannot overflow.
 * Clamp: ReLU6-style [0, 127] with VQSHLU #25 + VSHR #25 (no constant registers), otherwise VMAX/VMIN.
 *
 * Pointwise: 4 output channels per step, dot products with VMLADAV over 16 input channels (the
 * input of one or two pixels stays in Q registers while the weight rows stream), the four sums go
 * back into a vector (VMOV two lanes at a time) for bias, requant and a narrowing store.
 * Depthwise: one channel at a time with the output columns as lanes (4 per vector): byte gathers from
 * three zero-padded copies of the input rows and VMLA by the scalar weight.
 * Stem: im2col of the k x k x cin patch (zero padded) into scratch, then the pointwise machinery. */
#include "mnv2_nn.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include <arm_mve.h>
#include <stddef.h>

#define AI static inline __attribute__((always_inline))

/* ---- helpers ---------------------------------------------------------------------------------- */

/* [a0, a1, a2, a3] from four general-purpose registers: two VMOVs. */
AI int32x4_t pack4(int32_t a0, int32_t a1, int32_t a2, int32_t a3)
{
    int32x4_t v;
    __asm__("vmov %q0[2], %q0[0], %3, %1\n\tvmov %q0[3], %q0[1], %4, %2"
            : "=w"(v)
            : "r"(a0), "r"(a1), "r"(a2), "r"(a3));
    return v;
}

AI int32x4_t rq_mul(int32x4_t acc, int32x4_t m, int32_t nsh, const int sh32)
{
    return sh32 ? vrmulhq_s32(acc, m) : vrshlq_n_s32(vmulhq_s32(acc, m), nsh);
}

AI int32x4_t rq_clamp(int32x4_t v, int32x4_t lo, int32x4_t hi, const int relu)
{
    if (relu) return vreinterpretq_s32_u32(vshrq_n_u32(vqshluq_n_s32(v, 25), 25));
    return vminq_s32(vmaxq_s32(v, lo), hi);
}

/* dst[0..n) = src[0..n), tail-predicated loop. */
AI void vcopy(int8_t *dst, const int8_t *src, int32_t n)
{
    __asm__ volatile("wlstp.8 lr, %[n], 2f\n"
                     "1:\n\t"
                     "vldrb.8 q0, [%[s]], #16\n\t"
                     "vstrb.8 q0, [%[d]], #16\n\t"
                     "letp lr, 1b\n"
                     "2:\n"
                     : [s] "+r"(src), [d] "+r"(dst)
                     : [n] "r"(n)
                     : "q0", "lr", "memory");
}

AI void vzero(int8_t *dst, int32_t n)
{
    __asm__ volatile("vmov.i32 q0, #0\n\t"
                     "wlstp.8 lr, %[n], 2f\n"
                     "1:\n\t"
                     "vstrb.8 q0, [%[d]], #16\n\t"
                     "letp lr, 1b\n"
                     "2:\n"
                     : [d] "+r"(dst)
                     : [n] "r"(n)
                     : "q0", "lr", "memory");
}

/* ---- pointwise -------------------------------------------------------------------------------- */

/* Bias, requant, clamp and store of four output channels of NPIX pixels (acc[p][r]).
 * The lane order that the dual-lane VMOV gives (which GPR lands in lane 0 or 2) is not trusted: perm =
 * pack4(0, 1, 2, 3) says which output channel each lane holds, and bias, multiplier and the output
 * bytes go through gathers/scatters with those offsets (same instruction count as plain loads). */
#define PW_FINISH(NPIX, acc, bias_p, mult_p, out0, ostride, rows, OTAIL)                                    \
    do {                                                                                                  \
        mve_pred16_t op_ = vcmpltq_n_s32(vreinterpretq_s32_u32(perm), (rows));                                         \
        int32x4_t b_ = OTAIL ? vldrwq_gather_shifted_offset_z_s32(bias_p, perm, op_)                      \
                             : vldrwq_gather_shifted_offset_s32(bias_p, perm);                            \
        int32x4_t m_ = OTAIL ? vldrwq_gather_shifted_offset_z_s32(mult_p, perm, op_)                      \
                             : vldrwq_gather_shifted_offset_s32(mult_p, perm);                            \
        _Pragma("GCC unroll 4") for (int p_ = 0; p_ < (NPIX); ++p_) {                                   \
            int32x4_t v_ = pack4(acc[p_][0], acc[p_][1], acc[p_][2], acc[p_][3]);                         \
            v_ = rq_clamp(rq_mul(vaddq_s32(v_, b_), m_, nsh, sh32), vlo, vhi, relu);                      \
            if (OTAIL)                                                                                    \
                vstrbq_scatter_offset_p_s32((out0) + p_ * (ostride), perm, v_, op_);                      \
            else                                                                                          \
                vstrbq_scatter_offset_s32((out0) + p_ * (ostride), perm, v_);                             \
        }                                                                                                 \
    } while (0)

/* The lane of each packed value (see PW_FINISH). */
AI uint32x4_t pack_perm(void)
{
    return vreinterpretq_u32_s32(pack4(0, 1, 2, 3));
}

/* Four output channels (rows of wq, `rows` valid) for NPIX pixels whose inputs sit in X[p][j]
 * (NCH chunks of 16, the last one zero beyond cin). CIN: compile-time cin or 0. */
AI void pw_quad_res(const int8x16_t X[2][4], const int NPIX, const int NCH, const int CIN, int32_t cin_rt,
                    const int8_t *wq, const int32_t *bias, const int32_t *mult, int8_t *out0, int32_t ostride,
                    int32_t rows, const int OTAIL, int32_t nsh, int32x4_t vlo, int32x4_t vhi, uint32x4_t perm, const int sh32,
                    const int relu)
{
    const int32_t cin = CIN ? CIN : cin_rt;
    int32_t acc[2][4];
    mve_pred16_t wp = vctp8q(cin - 16 * (NCH - 1));
    #pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
        const int8_t *wr = wq + (OTAIL ? (r < rows ? r : rows - 1) : r) * cin;
        #pragma GCC unroll 4
        for (int j = 0; j < NCH; ++j) {
            int8x16_t W = (OTAIL && j == NCH - 1) ? vldrbq_z_s8(wr + 16 * j, wp) : vldrbq_s8(wr + 16 * j);
            #pragma GCC unroll 4
            for (int p = 0; p < NPIX; ++p)
                acc[p][r] = j == 0 ? vmladavq_s8(X[p][j], W) : vmladavaq_s8(acc[p][r], X[p][j], W);
        }
    }
    PW_FINISH(NPIX, acc, bias, mult, out0, ostride, rows, OTAIL);
}

/* Pointwise with the inputs of NPIX pixels resident (cin <= 16 * NCH). */
AI void pw_res(const int8_t *in, int32_t pixels, int32_t cin_rt, const int8_t *w, const int32_t *bias,
               const int32_t *mult, int32_t nsh, int32_t lo, int32_t hi, int32_t cout, int8_t *out,
               const int NPIX, const int NCH, const int CIN, const int sh32, const int relu)
{
    const int32_t cin = CIN ? CIN : cin_rt;
    const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
    const uint32x4_t perm = pack_perm();
    const mve_pred16_t xp = vctp8q(cin - 16 * (NCH - 1));
    int32_t p = 0;
    for (; p + NPIX <= pixels; p += NPIX) {
        int8x16_t X[2][4];
        const int8_t *x = in + p * cin;
        #pragma GCC unroll 4
        for (int q = 0; q < NPIX; ++q)
#pragma GCC unroll 4
            for (int j = 0; j < NCH; ++j)
                X[q][j] = (j == NCH - 1 && (cin & 15)) ? vldrbq_z_s8(x + q * cin + 16 * j, xp)
                                                       : vldrbq_s8(x + q * cin + 16 * j);
        int8_t *o0 = out + p * cout;
        int32_t o = 0;
        for (; o + 4 < cout; o += 4)
            pw_quad_res(X, NPIX, NCH, CIN, cin, w + o * cin, bias + o, mult + o, o0 + o, cout, 4, 0, nsh, vlo, vhi, perm,
                        sh32, relu);
        pw_quad_res(X, NPIX, NCH, CIN, cin, w + o * cin, bias + o, mult + o, o0 + o, cout, cout - o, 1, nsh, vlo,
                    vhi, perm, sh32, relu);
    }
    if (NPIX == 2 && p < pixels) {
        int8x16_t X[2][4];
        const int8_t *x = in + p * cin;
        #pragma GCC unroll 4
        for (int j = 0; j < NCH; ++j)
            X[0][j] = (j == NCH - 1 && (cin & 15)) ? vldrbq_z_s8(x + 16 * j, xp) : vldrbq_s8(x + 16 * j);
        int8_t *o0 = out + p * cout;
        int32_t o = 0;
        for (; o + 4 < cout; o += 4)
            pw_quad_res(X, 1, NCH, CIN, cin, w + o * cin, bias + o, mult + o, o0 + o, cout, 4, 0, nsh, vlo, vhi, perm,
                        sh32, relu);
        pw_quad_res(X, 1, NCH, CIN, cin, w + o * cin, bias + o, mult + o, o0 + o, cout, cout - o, 1, nsh, vlo, vhi, perm,
                    sh32, relu);
    }
}

/* cin <= 8: X = [x | 0] and [0 | x] (x - 8 loaded into the high half), W = [w_o | w_o+1], so one
 * 16-byte weight load feeds two output channels. */
AI void pw_small_quad(const int8x16_t X[2][2], const int NPIX, int32_t cin, const int8_t *wq, uint8x16_t goff,
                      const int32_t *bias, const int32_t *mult, int8_t *out0, int32_t ostride, int32_t rows,
                      const int OTAIL, int32_t nsh, int32x4_t vlo, int32x4_t vhi, uint32x4_t perm, const int sh32, const int relu,
                      const int FAST8)
{
    int32_t acc[2][4];
    int8x16_t W01, W23;
    if (FAST8 && !OTAIL) {
        W01 = vldrbq_s8(wq);
        W23 = vldrbq_s8(wq + 16);
    } else {
        uint32_t m = (1u << cin) - 1;
        mve_pred16_t p01 = (mve_pred16_t)(m | (rows > 1 ? m << 8 : 0));
        mve_pred16_t p23 = (mve_pred16_t)((rows > 2 ? m : 0) | (rows > 3 ? m << 8 : 0));
        W01 = vldrbq_gather_offset_z_s8(wq, goff, p01);
        W23 = vldrbq_gather_offset_z_s8(wq + 2 * cin, goff, p23);
    }
    #pragma GCC unroll 4
    for (int p = 0; p < NPIX; ++p) {
        acc[p][0] = vmladavq_s8(X[p][0], W01);
        acc[p][1] = vmladavq_s8(X[p][1], W01);
        acc[p][2] = vmladavq_s8(X[p][0], W23);
        acc[p][3] = vmladavq_s8(X[p][1], W23);
    }
    PW_FINISH(NPIX, acc, bias, mult, out0, ostride, rows, OTAIL);
}

AI void pw_small(const int8_t *in, int32_t pixels, int32_t cin, const int8_t *w, const int32_t *bias,
                 const int32_t *mult, int32_t nsh, int32_t lo, int32_t hi, int32_t cout, int8_t *out, const int sh32,
                 const int relu, const int FAST8)
{
    if (FAST8) cin = 8;
    const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
    const uint32x4_t perm = pack_perm();
    const mve_pred16_t pa = (mve_pred16_t)((1u << cin) - 1), pb = (mve_pred16_t)(pa << 8);
    /* lanes 0..7: w_o[i], lanes 8..15: w_o+1[i - 8] = wq[cin + i - 8] */
    uint8x16_t goff = vaddq_u8(vidupq_n_u8(0, 1), vdupq_n_u8(0));
    goff = vpselq_u8(vaddq_n_u8(goff, (uint8_t)(cin - 8)), goff, (mve_pred16_t)0xFF00u);
    int32_t p = 0;
    for (; p + 2 <= pixels; p += 2) {
        const int8_t *x = in + p * cin;
        int8x16_t X[2][2];
        X[0][0] = vldrbq_z_s8(x, pa);
        X[0][1] = vldrbq_z_s8(x - 8, pb);
        X[1][0] = vldrbq_z_s8(x + cin, pa);
        X[1][1] = vldrbq_z_s8(x + cin - 8, pb);
        int8_t *o0 = out + p * cout;
        int32_t o = 0;
        for (; o + 4 < cout; o += 4)
            pw_small_quad(X, 2, cin, w + o * cin, goff, bias + o, mult + o, o0 + o, cout, 4, 0,
                          nsh, vlo, vhi, perm, sh32, relu, FAST8);
        pw_small_quad(X, 2, cin, w + o * cin, goff, bias + o, mult + o, o0 + o, cout, cout - o,
                      1, nsh, vlo, vhi, perm, sh32, relu, FAST8);
    }
    if (p < pixels) {
        const int8_t *x = in + p * cin;
        int8x16_t X[2][2];
        X[0][0] = vldrbq_z_s8(x, pa);
        X[0][1] = vldrbq_z_s8(x - 8, pb);
        int8_t *o0 = out + p * cout;
        int32_t o = 0;
        for (; o + 4 < cout; o += 4)
            pw_small_quad(X, 1, cin, w + o * cin, goff, bias + o, mult + o, o0 + o, cout, 4, 0,
                          nsh, vlo, vhi, perm, sh32, relu, FAST8);
        pw_small_quad(X, 1, cin, w + o * cin, goff, bias + o, mult + o, o0 + o, cout, cout - o,
                      1, nsh, vlo, vhi, perm, sh32, relu, FAST8);
    }
}

/* Any cin: one pixel, four output rows, the input streamed in chunks of 16. */
AI void pw_stream(const int8_t *in, int32_t pixels, int32_t cin, const int8_t *w, const int32_t *bias,
                  const int32_t *mult, int32_t nsh, int32_t lo, int32_t hi, int32_t cout, int8_t *out,
                  const int sh32, const int relu)
{
    const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
    const uint32x4_t perm = pack_perm();
    const int32_t nfull = cin >> 4, rem = cin & 15;
    const mve_pred16_t tp = vctp8q(rem);
    for (int32_t p = 0; p < pixels; ++p) {
        const int8_t *x = in + p * cin;
        int8_t *o0 = out + p * cout;
        for (int32_t o = 0; o < cout; o += 4) {
            int32_t rows = cout - o < 4 ? cout - o : 4;
            const int8_t *w0 = w + o * cin;
            const int8_t *w1 = w0 + (rows > 1 ? cin : 0);
            const int8_t *w2 = w0 + (rows > 2 ? 2 * cin : 0);
            const int8_t *w3 = w0 + (rows > 3 ? 3 * cin : 0);
            const int8_t *xp = x;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (int32_t j = 0; j < nfull; ++j) {
                int8x16_t xv = vldrbq_s8(xp);
                xp += 16;
                a0 = vmladavaq_s8(a0, xv, vldrbq_s8(w0));
                w0 += 16;
                a1 = vmladavaq_s8(a1, xv, vldrbq_s8(w1));
                w1 += 16;
                a2 = vmladavaq_s8(a2, xv, vldrbq_s8(w2));
                w2 += 16;
                a3 = vmladavaq_s8(a3, xv, vldrbq_s8(w3));
                w3 += 16;
            }
            if (rem) {
                int8x16_t xv = vldrbq_z_s8(xp, tp);
                a0 = vmladavaq_s8(a0, xv, vldrbq_z_s8(w0, tp));
                a1 = vmladavaq_s8(a1, xv, vldrbq_z_s8(w1, tp));
                a2 = vmladavaq_s8(a2, xv, vldrbq_z_s8(w2, tp));
                a3 = vmladavaq_s8(a3, xv, vldrbq_z_s8(w3, tp));
            }
            int32_t acc[1][4] = {{a0, a1, a2, a3}};
            if (rows == 4)
                PW_FINISH(1, acc, bias + o, mult + o, o0 + o, 0, 4, 0);
            else
                PW_FINISH(1, acc, bias + o, mult + o, o0 + o, 0, rows, 1);
        }
    }
}

#define PW_VARIANTS(X)                                                                                    \
    X(small8, pw_small(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, SH, RL, 1))              \
    X(small, pw_small(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, SH, RL, 0))               \
    X(c16, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 2, 1, 16, SH, RL))            \
    X(r1, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 2, 1, 0, SH, RL))              \
    X(c24, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 2, 2, 24, SH, RL))            \
    X(c32, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 2, 2, 32, SH, RL))            \
    X(r2, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 2, 2, 0, SH, RL))              \
    X(c48, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 1, 3, 48, SH, RL))            \
    X(r3, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 1, 3, 0, SH, RL))              \
    X(c56, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 1, 4, 56, SH, RL))            \
    X(r4, pw_res(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, 1, 4, 0, SH, RL))              \
    X(stream, pw_stream(in, pixels, cin, w, bias, mult, nsh, lo, hi, cout, out, SH, RL))

/* Generate the variants (explicitly: SH and RL are literal constants in each body). */
#define PWX(name, call)                                                                                   \
    static void __attribute__((noinline)) pw_##name##_g33(MNV2_PW_ARGS)                                   \
    {                                                                                                     \
        (void)scratch;                                                                                    \
        const int32_t nsh = 32 - shift;                                                                   \
        enum { SH = 0, RL = 0 };                                                                          \
        call;                                                                                             \
    }                                                                                                     \
    static void __attribute__((noinline)) pw_##name##_g32(MNV2_PW_ARGS)                                   \
    {                                                                                                     \
        (void)scratch;                                                                                    \
        const int32_t nsh = 32 - shift;                                                                   \
        enum { SH = 1, RL = 0 };                                                                          \
        call;                                                                                             \
    }                                                                                                     \
    static void __attribute__((noinline)) pw_##name##_r33(MNV2_PW_ARGS)                                   \
    {                                                                                                     \
        (void)scratch;                                                                                    \
        const int32_t nsh = 32 - shift;                                                                   \
        enum { SH = 0, RL = 1 };                                                                          \
        call;                                                                                             \
    }                                                                                                     \
    static void __attribute__((noinline)) pw_##name##_r32(MNV2_PW_ARGS)                                   \
    {                                                                                                     \
        (void)scratch;                                                                                    \
        const int32_t nsh = 32 - shift;                                                                   \
        enum { SH = 1, RL = 1 };                                                                          \
        call;                                                                                             \
    }
PW_VARIANTS(PWX)

typedef void (*pw_fn)(MNV2_PW_ARGS);
#define PW_TABLE(name, call) {pw_##name##_g33, pw_##name##_g32, pw_##name##_r33, pw_##name##_r32},
enum {
#define PW_ENUM(name, call) PWV_##name,
    PW_VARIANTS(PW_ENUM)
#undef PW_ENUM
};
static const pw_fn pw_table[][4] = {PW_VARIANTS(PW_TABLE)};

void mnv2_pw_s8_mve(MNV2_PW_ARGS)
{
    if (shift < 32 || pixels <= 0 || cout <= 0) {
        mnv2_pw_s8_portable(in, pixels, cin, w, bias, mult, shift, lo, hi, cout, out, scratch);
        return;
    }
    int v;
    if (cin == 8)
        v = PWV_small8;
    else if (cin < 8)
        v = PWV_small;
    else if (cin == 16)
        v = PWV_c16;
    else if (cin < 16)
        v = PWV_r1;
    else if (cin == 24)
        v = PWV_c24;
    else if (cin == 32)
        v = PWV_c32;
    else if (cin < 32)
        v = PWV_r2;
    else if (cin == 48)
        v = PWV_c48;
    else if (cin <= 48)
        v = PWV_r3;
    else if (cin == 56)
        v = PWV_c56;
    else if (cin <= 64)
        v = PWV_r4;
    else
        v = PWV_stream;
    int k = (shift == 32 ? 1 : 0) + (lo == 0 && hi == 127 ? 2 : 0);
    pw_table[v][k](in, pixels, cin, w, bias, mult, shift, lo, hi, cout, out, scratch);
}

/* ---- depthwise 3x3 -------------------------------------------------------------------------- */

/* wt: the weights transposed to [c][16] (taps 0..8 of channel c at wt + 16 c). */
AI void dw_body(int8_t *const prow[3], int32_t out_w, int32_t C, int32_t s, const int8_t *wt, const int32_t *bias,
                const int32_t *mult, int32_t nsh, int32_t lo, int32_t hi, int8_t *out, const int sh32,
                const int relu)
{
    const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi), vsh = vdupq_n_s32(nsh);
    const uint32x4_t o0 = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)(s * C));
    const uint32x4_t o1 = vaddq_n_u32(o0, (uint32_t)C), o2 = vaddq_n_u32(o0, (uint32_t)(2 * C));
    const uint32x4_t so = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)C);
    const int32_t nvec = (out_w + 3) >> 2, step = 4 * s * C;
    const mve_pred16_t tailp = vctp32q(out_w - 4 * (nvec - 1));
    const int32_t d1 = (int32_t)(prow[1] - prow[0]), d2 = (int32_t)(prow[2] - prow[0]);
    const int8_t *rbase = prow[0];
    for (int32_t c = 0; c < C; ++c, wt += 16) {
        const int32_t w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3], w4 = wt[4], w5 = wt[5], w6 = wt[6],
                      w7 = wt[7], w8 = wt[8];
        const int32x4_t b = vdupq_n_s32(bias[c]);
        const int32x4_t m = vdupq_n_s32(mult[c]);
        const int8_t *r0 = rbase + c;
        int8_t *op = out + c;
        for (int32_t v = nvec; v > 0; --v) {
            const int8_t *r1 = r0 + d1, *r2 = r0 + d2;
            int32x4_t acc = vmlaq_n_s32(b, vldrbq_gather_offset_s32(r0, o0), w0);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r0, o1), w1);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r0, o2), w2);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r1, o0), w3);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r1, o1), w4);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r1, o2), w5);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r2, o0), w6);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r2, o1), w7);
            acc = vmlaq_n_s32(acc, vldrbq_gather_offset_s32(r2, o2), w8);
            r0 += step;
            int32x4_t y = sh32 ? vrmulhq_s32(acc, m) : vrshlq_s32(vmulhq_s32(acc, m), vsh);
            y = rq_clamp(y, vlo, vhi, relu);
            if (v == 1)
                vstrbq_scatter_offset_p_s32(op, so, y, tailp);
            else
                vstrbq_scatter_offset_s32(op, so, y);
            op += 4 * C;
        }
    }
}

void mnv2_dw3x3_row_s8_mve(MNV2_DW_ARGS)
{
    if (shift < 32) {
        mnv2_dw3x3_row_s8_portable(rows, in_w, channels, stride, w, bias, mult, shift, lo, hi, out, scratch);
        return;
    }
    const int32_t C = channels, out_w = (in_w - 1) / stride + 1;
    /* three zero-padded rows: [pad 1 pixel][in_w pixels][pad: up to the last gathered column] */
    const int32_t rpx = in_w + (stride == 1 ? 5 : 8);
    const int32_t rs = rpx * C;
    int8_t *prow[3];
#pragma GCC unroll 4
    for (int ky = 0; ky < 3; ++ky) {
        int8_t *d = (int8_t *)scratch + ky * rs;
        prow[ky] = d;
        if (rows[ky] == NULL) {
            vzero(d, rs);
        } else {
            vzero(d, C);
            vcopy(d + C, rows[ky], in_w * C);
            vzero(d + (in_w + 1) * C, (rpx - in_w - 1) * C);
        }
    }
    /* the weights transposed to [c][16]: 16 channels per step, one byte scatter per tap */
    int8_t *wt = (int8_t *)(((uintptr_t)scratch + 3 * rs + 15) & ~(uintptr_t)15);
    {
        const uint8x16_t so = vmulq_n_u8(vidupq_n_u8(0, 1), 16);
        for (int32_t c = 0; c < C; c += 16) {
            mve_pred16_t p = vctp8q(C - c);
#pragma GCC unroll 9
            for (int t = 0; t < 9; ++t)
                vstrbq_scatter_offset_p_s8(wt + c * 16 + t, so, vldrbq_z_s8(w + t * C + c, p), p);
        }
    }
    const int32_t nsh = 32 - shift;
    const int relu = lo == 0 && hi == 127;
    if (shift == 32) {
        if (relu)
            dw_body(prow, out_w, C, stride, wt, bias, mult, nsh, lo, hi, out, 1, 1);
        else
            dw_body(prow, out_w, C, stride, wt, bias, mult, nsh, lo, hi, out, 1, 0);
    } else {
        if (relu)
            dw_body(prow, out_w, C, stride, wt, bias, mult, nsh, lo, hi, out, 0, 1);
        else
            dw_body(prow, out_w, C, stride, wt, bias, mult, nsh, lo, hi, out, 0, 0);
    }
}

/* ---- dense k x k convolution (the stem) ----------------------------------------------------- */

/* The zero-padded patch of output pixel (oy, ox) into dst (kkc bytes, then zeros up to a multiple of
 * 16). */
static void conv_patch(int8_t *dst, const int8_t *in, int32_t h, int32_t w, int32_t cin, int32_t k, int32_t iy0,
                       int32_t ix0, int32_t kkc)
{
    const int32_t kc = k * cin;
    if (ix0 >= 0 && ix0 + k <= w && iy0 >= 0 && iy0 + k <= h && kc <= 16) {
        const mve_pred16_t p = vctp8q(kc);
        for (int32_t ky = 0; ky < k; ++ky)
            vstrbq_s8(dst + ky * kc, vldrbq_z_s8(in + ((iy0 + ky) * w + ix0) * cin, p));
        vstrbq_s8(dst + kkc, vdupq_n_s8(0));
        return;
    }
    vzero(dst, (kkc + 15) & ~15);
    for (int32_t ky = 0; ky < k; ++ky) {
        int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= h) continue;
        for (int32_t kx = 0; kx < k; ++kx) {
            int32_t ix = ix0 + kx;
            if (ix < 0 || ix >= w) continue;
            const int8_t *s = in + (iy * w + ix) * cin;
            int8_t *d = dst + ky * kc + kx * cin;
            for (int32_t i = 0; i < cin; ++i) d[i] = s[i];
        }
    }
}

AI void conv_res(const int8_t *in, int32_t h, int32_t w, int32_t cin, const int8_t *weights, int32_t k,
                 int32_t stride, int32_t pad, const int32_t *bias, const int32_t *mult, int32_t nsh, int32_t lo,
                 int32_t hi, int32_t cout, int8_t *out, int8_t *scratch, const int NCH, const int CIN,
                 const int sh32, const int relu)
{
    const int32_t kkc = CIN ? CIN : k * k * cin;
    const int32_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
    const uint32x4_t perm = pack_perm();
    const int32_t pst = (kkc + 31) & ~15; /* patch stride: room for the 16-byte zero store */
    const int32_t npix = oh * ow;
    int32_t p = 0;
    for (; p < npix; p += 2) {
        const int NP = 2;
        int32_t q = p;
        #pragma GCC unroll 4
        for (int i = 0; i < NP; ++i, ++q) {
            int32_t qq = q < npix ? q : npix - 1;
            int32_t oy = qq / ow, ox = qq - oy * ow;
            conv_patch(scratch + i * pst, in, h, w, cin, k, oy * stride - pad, ox * stride - pad, kkc);
        }
        int8x16_t X[2][4];
        #pragma GCC unroll 4
        for (int i = 0; i < NP; ++i)
            for (int j = 0; j < NCH; ++j) X[i][j] = vldrbq_s8(scratch + i * pst + 16 * j);
        int8_t *o0 = out + p * cout;
        if (p + 1 < npix) {
            int32_t o = 0;
            for (; o + 4 < cout; o += 4)
                pw_quad_res(X, 2, NCH, CIN, kkc, weights + o * kkc, bias + o, mult + o, o0 + o, cout, 4, 0, nsh,
                            vlo, vhi, perm, sh32, relu);
            pw_quad_res(X, 2, NCH, CIN, kkc, weights + o * kkc, bias + o, mult + o, o0 + o, cout, cout - o, 1, nsh,
                        vlo, vhi, perm, sh32, relu);
        } else {
            int32_t o = 0;
            for (; o + 4 < cout; o += 4)
                pw_quad_res(X, 1, NCH, CIN, kkc, weights + o * kkc, bias + o, mult + o, o0 + o, cout, 4, 0, nsh,
                            vlo, vhi, perm, sh32, relu);
            pw_quad_res(X, 1, NCH, CIN, kkc, weights + o * kkc, bias + o, mult + o, o0 + o, cout, cout - o, 1, nsh,
                        vlo, vhi, perm, sh32, relu);
        }
    }
}

#define CONV_ARGS_CALL in, h, w, cin, weights, k, stride, pad, bias, mult, nsh, lo, hi, cout, out, (int8_t *)scratch

void mnv2_conv_s8_mve(MNV2_CONV_ARGS)
{
    const int32_t kkc = k * k * cin;
    if (shift < 32 || kkc > 64 || k * cin > 16) {
        mnv2_conv_s8_portable(in, h, w, cin, weights, k, stride, pad, bias, mult, shift, lo, hi, cout, out,
                              scratch);
        return;
    }
    const int32_t nsh = 32 - shift;
    const int relu = lo == 0 && hi == 127;
    if (kkc == 27) {
        if (shift == 32)
            relu ? conv_res(CONV_ARGS_CALL, 2, 27, 1, 1) : conv_res(CONV_ARGS_CALL, 2, 27, 1, 0);
        else
            relu ? conv_res(CONV_ARGS_CALL, 2, 27, 0, 1) : conv_res(CONV_ARGS_CALL, 2, 27, 0, 0);
    } else {
        /* generic: up to 4 chunks of 16, general clamp */
        const int nch = (kkc + 15) >> 4;
        if (shift == 32) {
            if (nch == 1) conv_res(CONV_ARGS_CALL, 1, 0, 1, 0);
            else if (nch == 2) conv_res(CONV_ARGS_CALL, 2, 0, 1, 0);
            else if (nch == 3) conv_res(CONV_ARGS_CALL, 3, 0, 1, 0);
            else conv_res(CONV_ARGS_CALL, 4, 0, 1, 0);
        } else {
            if (nch == 1) conv_res(CONV_ARGS_CALL, 1, 0, 0, 0);
            else if (nch == 2) conv_res(CONV_ARGS_CALL, 2, 0, 0, 0);
            else if (nch == 3) conv_res(CONV_ARGS_CALL, 3, 0, 0, 0);
            else conv_res(CONV_ARGS_CALL, 4, 0, 0, 0);
        }
    }
}

/* ---- residual add --------------------------------------------------------------------------- */

/* a*ma + b*mb = H * 2^16 + L with H = a*(ma >> 16) + b*(mb >> 16), L = a*(ma & 0xffff) + b*(mb & 0xffff)
 * (|H| < 2^24, |L| < 2^25), so for 17 <= shift <= 40:
 *   (S + 2^(shift-1)) >> shift == (H + 2^(shift-17) + (L >> 16)) >> (shift - 16)   (all in int32). */
void mnv2_add_s8_mve(MNV2_ADD_ARGS)
{
    if (shift < 17 || shift > 40) {
        mnv2_add_s8_portable(a, b, n, ma, mb, shift, out);
        return;
    }
    const int32_t mah = ma >> 16, mal = ma & 0xffff, mbh = mb >> 16, mbl = mb & 0xffff;
    const int32_t kround = 1 << (shift - 17), rsh = -(shift - 16);
    const int32x4_t vmah = vdupq_n_s32(mah), vlo = vdupq_n_s32(-127), vhi = vdupq_n_s32(127);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        int32x4_t va = vldrbq_s32(a + i), vb = vldrbq_s32(b + i);
        int32x4_t H = vmlasq_n_s32(va, vmah, kround);
        H = vmlaq_n_s32(H, vb, mbh);
        int32x4_t L = vmulq_n_s32(va, mal);
        L = vmlaq_n_s32(L, vb, mbl);
        H = vaddq_s32(H, vshrq_n_s32(L, 16));
        H = vshlq_r_s32(H, rsh);
        vstrbq_s32(out + i, vminq_s32(vmaxq_s32(H, vlo), vhi));
    }
    if (i < n) {
        mve_pred16_t p = vctp32q(n - i);
        int32x4_t va = vldrbq_z_s32(a + i, p), vb = vldrbq_z_s32(b + i, p);
        int32x4_t H = vmlasq_n_s32(va, vmah, kround);
        H = vmlaq_n_s32(H, vb, mbh);
        int32x4_t L = vmulq_n_s32(va, mal);
        L = vmlaq_n_s32(L, vb, mbl);
        H = vaddq_s32(H, vshrq_n_s32(L, 16));
        H = vshlq_r_s32(H, rsh);
        vstrbq_p_s32(out + i, vminq_s32(vmaxq_s32(H, vlo), vhi), p);
    }
}

/* ---- global average pooling ----------------------------------------------------------------- */

void mnv2_avgpool_s8_mve(MNV2_POOL_ARGS)
{
    if (shift < 32) {
        mnv2_avgpool_s8_portable(in, pixels, channels, mult, shift, out);
        return;
    }
    const int32x4_t m = vdupq_n_s32(mult), vlo = vdupq_n_s32(-127), vhi = vdupq_n_s32(127);
    const int32_t nsh = 32 - shift;
    for (int32_t c = 0; c < channels; c += 4) {
        mve_pred16_t p = vctp32q(channels - c);
        int32x4_t acc = vdupq_n_s32(0);
        const int8_t *x = in + c;
        for (int32_t q = 0; q < pixels; ++q, x += channels) acc = vaddq_s32(acc, vldrbq_z_s32(x, p));
        int32x4_t y = shift == 32 ? vrmulhq_s32(acc, m) : vrshlq_n_s32(vmulhq_s32(acc, m), nsh);
        vstrbq_p_s32(out + c, vminq_s32(vmaxq_s32(y, vlo), vhi), p);
    }
}

/* ---- classifier ----------------------------------------------------------------------------- */

void mnv2_dense_s8_mve(MNV2_DENSE_ARGS)
{
    const int32_t nfull = cin >> 4, rem = cin & 15;
    const mve_pred16_t tp = vctp8q(rem);
    for (int32_t o = 0; o < cout; o += 4) {
        int32_t rows = cout - o < 4 ? cout - o : 4;
        const int8_t *w0 = w + o * cin;
        const int8_t *w1 = w0 + (rows > 1 ? cin : 0);
        const int8_t *w2 = w0 + (rows > 2 ? 2 * cin : 0);
        const int8_t *w3 = w0 + (rows > 3 ? 3 * cin : 0);
        const int8_t *xp = in;
        int32_t a[4] = {bias[o], rows > 1 ? bias[o + 1] : 0, rows > 2 ? bias[o + 2] : 0, rows > 3 ? bias[o + 3] : 0};
        for (int32_t j = 0; j < nfull; ++j) {
            int8x16_t xv = vldrbq_s8(xp);
            xp += 16;
            a[0] = vmladavaq_s8(a[0], xv, vldrbq_s8(w0));
            a[1] = vmladavaq_s8(a[1], xv, vldrbq_s8(w1));
            a[2] = vmladavaq_s8(a[2], xv, vldrbq_s8(w2));
            a[3] = vmladavaq_s8(a[3], xv, vldrbq_s8(w3));
            w0 += 16;
            w1 += 16;
            w2 += 16;
            w3 += 16;
        }
        if (rem) {
            int8x16_t xv = vldrbq_z_s8(xp, tp);
            a[0] = vmladavaq_s8(a[0], xv, vldrbq_z_s8(w0, tp));
            a[1] = vmladavaq_s8(a[1], xv, vldrbq_z_s8(w1, tp));
            a[2] = vmladavaq_s8(a[2], xv, vldrbq_z_s8(w2, tp));
            a[3] = vmladavaq_s8(a[3], xv, vldrbq_z_s8(w3, tp));
        }
        for (int32_t r = 0; r < rows; ++r) out[o + r] = (float)a[r] * scale[o + r];
    }
}

#endif
