/* The executor's helpers for the int8 kernels (mnv2_nn.h): layers that stream rows through a ring. */
#ifndef EDGE_MNV2_GRAPH_H
#define EDGE_MNV2_GRAPH_H

#include "mnv2_nn.h"

/* One quantized convolution's parameters: weights, bias, per-channel multipliers, shift, clamp. */
typedef struct {
    const int8_t *w;
    const int32_t *bias;
    const int32_t *mult;
    int32_t shift, lo, hi;
} mnv2_qconv;

/* A 3x3 depthwise convolution (padding 1) over a whole [h][w][c] tensor whose input rows pass through
 * `ring` (3 rows of w * c bytes) as the output rows need them. Each ring row is either a copy of
 * src's row (expand == NULL: then out may be src itself, the convolution runs in place) or the
 * pointwise expansion of src's row ([w][expand_cin] -> [w][c]): the expanded tensor never exists
 * whole. scratch: the larger of MNV2_PW_SCRATCH(expand_cin) and MNV2_DW_SCRATCH(w, c). */
void mnv2_dw_stream(const int8_t *src, int32_t h, int32_t w, int32_t c, int32_t stride,
                    const mnv2_qconv *expand, int32_t expand_cin, const mnv2_qconv *dw,
                    int8_t *out, int8_t *ring, void *scratch);

#endif
