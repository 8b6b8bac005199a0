/* edge-mnv2's int8 kernels for microcontrollers: the layers of the MobileNetV2 classifier family.
 *
 * Numbers (edge_mnv2/quantize/ptq.py, bit for bit):
 *   activations int8, symmetric (zero point 0), tensors NHWC with N = 1: [H][W][C];
 *   weights int8, symmetric per output channel; biases int32 at the accumulator's scale;
 *   requantization  y = clamp((acc * mult[o] + 2^(shift-1)) >> shift, lo, hi), the product and the
 *   sum in 64 bits, the shift arithmetic (floor), shift in 1..62.
 *
 * Every kernel has three implementations with the same results: _portable (plain C, any core),
 * _dsp (Armv7E-M / Armv8-M DSP extension: Cortex-M4, M7, M33; ACLE __smlad and friends) and _mve
 * (Helium, Cortex-M55/M85: arm_mve.h). The unsuffixed name picks the best one the compiler's -mcpu
 * allows; tests call the suffixed ones side by side.
 *
 * Scratch: kernels that need working memory take a `scratch` pointer of at least the bytes the
 * matching MNV2_*_SCRATCH macro gives (4-byte aligned); the executor plans it in the arena.
 */
#ifndef EDGE_MNV2_NN_H
#define EDGE_MNV2_NN_H

#include <stdint.h>

#if defined(MNV2_NN_PORTABLE) /* -DMNV2_NN_PORTABLE: the plain C kernels on any core */
#define MNV2_NN_IMPL portable
#define MNV2_NN_IMPL_NAME "portable"
#elif defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define MNV2_NN_IMPL mve
#define MNV2_NN_IMPL_NAME "mve"
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define MNV2_NN_IMPL dsp
#define MNV2_NN_IMPL_NAME "dsp"
#else
#define MNV2_NN_IMPL portable
#define MNV2_NN_IMPL_NAME "portable"
#endif
#define MNV2_NN_CAT2(a, b) a##_##b
#define MNV2_NN_CAT(a, b) MNV2_NN_CAT2(a, b)

/* Pointwise (1x1, stride 1) convolution: in [pixels][cin], w [cout][cin] -> out [pixels][cout]. */
#define MNV2_PW_ARGS const int8_t *in, int32_t pixels, int32_t cin, const int8_t *w, const int32_t *bias, \
    const int32_t *mult, int32_t shift, int32_t lo, int32_t hi, int32_t cout, int8_t *out, void *scratch
/* Bytes of scratch mnv2_pw_s8 needs for cin input channels (all implementations). */
#define MNV2_PW_SCRATCH(cin) (4 * ((cin) + 3) / 4 * 4 * 2)

/* One output row of a 3x3 depthwise convolution, padding 1, stride 1 or 2.
 * rows[0..2]: input rows y*stride-1, y*stride, y*stride+1, each [in_w][channels]; NULL stands for a
 * padding row (zeros). w [3][3][channels]. out [out_w][channels], out_w = (in_w - 1) / stride + 1.
 * out must not overlap the rows (the executor runs a depthwise convolution in place by copying input
 * rows to a ring of three before their memory is overwritten). */
#define MNV2_DW_ARGS const int8_t *const rows[3], int32_t in_w, int32_t channels, int32_t stride, \
    const int8_t *w, const int32_t *bias, const int32_t *mult, int32_t shift, int32_t lo, int32_t hi, \
    int8_t *out, void *scratch
#define MNV2_DW_SCRATCH(in_w, channels) (2 * 3 * ((in_w) + 4) * ((channels) + 3) / 4 * 4 + 32 * (channels) + 16)

/* Dense k x k convolution (the stem): in [h][w][cin], weights [cout][k][k][cin], zero padding pad,
 * stride -> out [oh][ow][cout], oh = (h + 2 pad - k) / stride + 1. */
#define MNV2_CONV_ARGS const int8_t *in, int32_t h, int32_t w, int32_t cin, const int8_t *weights, int32_t k, \
    int32_t stride, int32_t pad, const int32_t *bias, const int32_t *mult, int32_t shift, int32_t lo, \
    int32_t hi, int32_t cout, int8_t *out, void *scratch
#define MNV2_CONV_SCRATCH(k, cin) (6 * (((k) * (k) * (cin) + 3) / 4 * 4) + 64)

/* Residual sum: out[i] = clamp((a[i] * ma + b[i] * mb + 2^(shift-1)) >> shift, -127, 127).
 * out may be a or b. */
#define MNV2_ADD_ARGS const int8_t *a, const int8_t *b, int32_t n, int32_t ma, int32_t mb, int32_t shift, \
    int8_t *out

/* Global average pooling: in [pixels][channels] -> out[c] = clamp(requant(sum_p in[p][c]), -127, 127)
 * with one multiplier. */
#define MNV2_POOL_ARGS const int8_t *in, int32_t pixels, int32_t channels, int32_t mult, int32_t shift, \
    int8_t *out

/* Classifier: out[o] = (float)(bias[o] + sum_i in[i] * w[o][i]) * scale[o] (float32). */
#define MNV2_DENSE_ARGS const int8_t *in, int32_t cin, const int8_t *w, const int32_t *bias, \
    const float *scale, int32_t cout, float *out

/* The model input: a uint8 HWC image becomes the int8 input tensor in place, through a table
 * lut[c][v] (c = channel, v = pixel value) that holds exactly what normalising and quantizing gives. */
void mnv2_quantize_u8(uint8_t *image, int32_t n, int32_t channels, const int8_t *lut);

#define MNV2_NN_DECLARE(impl) \
    void mnv2_pw_s8_##impl(MNV2_PW_ARGS); \
    void mnv2_dw3x3_row_s8_##impl(MNV2_DW_ARGS); \
    void mnv2_conv_s8_##impl(MNV2_CONV_ARGS); \
    void mnv2_add_s8_##impl(MNV2_ADD_ARGS); \
    void mnv2_avgpool_s8_##impl(MNV2_POOL_ARGS); \
    void mnv2_dense_s8_##impl(MNV2_DENSE_ARGS);

MNV2_NN_DECLARE(portable)
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
MNV2_NN_DECLARE(dsp)
#endif
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
MNV2_NN_DECLARE(mve)
#endif

#define mnv2_pw_s8 MNV2_NN_CAT(mnv2_pw_s8, MNV2_NN_IMPL)
#define mnv2_dw3x3_row_s8 MNV2_NN_CAT(mnv2_dw3x3_row_s8, MNV2_NN_IMPL)
#define mnv2_conv_s8 MNV2_NN_CAT(mnv2_conv_s8, MNV2_NN_IMPL)
#define mnv2_add_s8 MNV2_NN_CAT(mnv2_add_s8, MNV2_NN_IMPL)
#define mnv2_avgpool_s8 MNV2_NN_CAT(mnv2_avgpool_s8, MNV2_NN_IMPL)
#define mnv2_dense_s8 MNV2_NN_CAT(mnv2_dense_s8, MNV2_NN_IMPL)

/* The exact requantization, for implementations and tests. */
static inline int32_t mnv2_requant(int32_t acc, int32_t mult, int32_t shift, int32_t lo, int32_t hi)
{
    int64_t v = ((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift;
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

#endif
