/* The portable int8 kernels: plain C for any core (the reference the SIMD ones are tested against). */
#include "mnv2_nn.h"

#include <stddef.h>

void mnv2_quantize_u8(uint8_t *image, int32_t n, int32_t channels, const int8_t *lut)
{
    int8_t *out = (int8_t *)image;
    if (channels == 3) { /* RGB: a table per channel, a pixel an iteration */
        const int8_t *l0 = lut, *l1 = lut + 256, *l2 = lut + 512;
        for (int32_t i = 0; i < n; i += 3) {
            uint8_t r = image[i], g = image[i + 1], b = image[i + 2];
            out[i] = l0[r];
            out[i + 1] = l1[g];
            out[i + 2] = l2[b];
        }
        return;
    }
    for (int32_t i = 0; i < n; i += channels)
        for (int32_t c = 0; c < channels; ++c) out[i + c] = lut[c * 256 + image[i + c]];
}

void mnv2_pw_s8_portable(MNV2_PW_ARGS)
{
    (void)scratch;
    for (int32_t p = 0; p < pixels; ++p) {
        const int8_t *x = in + p * cin;
        for (int32_t o = 0; o < cout; ++o) {
            const int8_t *wo = w + o * cin;
            int32_t acc = bias[o];
            for (int32_t i = 0; i < cin; ++i) acc += (int32_t)x[i] * wo[i];
            out[p * cout + o] = (int8_t)mnv2_requant(acc, mult[o], shift, lo, hi);
        }
    }
}

void mnv2_dw3x3_row_s8_portable(MNV2_DW_ARGS)
{
    (void)scratch;
    int32_t out_w = (in_w - 1) / stride + 1;
    for (int32_t ox = 0; ox < out_w; ++ox) {
        for (int32_t c = 0; c < channels; ++c) {
            int32_t acc = bias[c];
            for (int32_t ky = 0; ky < 3; ++ky) {
                const int8_t *row = rows[ky];
                if (row == NULL) continue;
                for (int32_t kx = 0; kx < 3; ++kx) {
                    int32_t ix = ox * stride - 1 + kx;
                    if (ix < 0 || ix >= in_w) continue;
                    acc += (int32_t)row[ix * channels + c] * w[(ky * 3 + kx) * channels + c];
                }
            }
            out[ox * channels + c] = (int8_t)mnv2_requant(acc, mult[c], shift, lo, hi);
        }
    }
}

void mnv2_conv_s8_portable(MNV2_CONV_ARGS)
{
    (void)scratch;
    int32_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    for (int32_t oy = 0; oy < oh; ++oy)
        for (int32_t ox = 0; ox < ow; ++ox)
            for (int32_t o = 0; o < cout; ++o) {
                int32_t acc = bias[o];
                for (int32_t ky = 0; ky < k; ++ky) {
                    int32_t iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    for (int32_t kx = 0; kx < k; ++kx) {
                        int32_t ix = ox * stride - pad + kx;
                        if (ix < 0 || ix >= w) continue;
                        const int8_t *x = in + (iy * w + ix) * cin;
                        const int8_t *wk = weights + ((o * k + ky) * k + kx) * cin;
                        for (int32_t i = 0; i < cin; ++i) acc += (int32_t)x[i] * wk[i];
                    }
                }
                out[(oy * ow + ox) * cout + o] = (int8_t)mnv2_requant(acc, mult[o], shift, lo, hi);
            }
}

void mnv2_add_s8_portable(MNV2_ADD_ARGS)
{
    int64_t round = (int64_t)1 << (shift - 1);
    for (int32_t i = 0; i < n; ++i) {
        int64_t v = ((int64_t)a[i] * ma + (int64_t)b[i] * mb + round) >> shift;
        out[i] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
    }
}

void mnv2_avgpool_s8_portable(MNV2_POOL_ARGS)
{
    for (int32_t c = 0; c < channels; ++c) {
        int32_t acc = 0;
        for (int32_t p = 0; p < pixels; ++p) acc += in[p * channels + c];
        out[c] = (int8_t)mnv2_requant(acc, mult, shift, -127, 127);
    }
}

void mnv2_dense_s8_portable(MNV2_DENSE_ARGS)
{
    for (int32_t o = 0; o < cout; ++o) {
        int32_t acc = bias[o];
        for (int32_t i = 0; i < cin; ++i) acc += (int32_t)in[i] * w[o * cin + i];
        out[o] = (float)acc * scale[o];
    }
}
