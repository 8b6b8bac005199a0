/* Row streaming for depthwise convolutions: in place, or fused with the pointwise expansion before. */
#include "mnv2_graph.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Row copies for in-place depthwise layers: rows of whole words go a word at a time (newlib-nano's
 * memcpy copies bytes); gcc must not turn the loop back into a memcpy call. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void copy_row(int8_t *dst, const int8_t *src, int32_t n)
{
    if ((((uintptr_t)dst | (uintptr_t)src | (uintptr_t)n) & 3u) == 0) {
        uint32_t *d = (uint32_t *)(void *)dst;
        const uint32_t *s = (const uint32_t *)(const void *)src;
        for (int32_t i = 0; i < n / 4; ++i) d[i] = s[i];
        return;
    }
    memcpy(dst, src, (size_t)n);
}

void mnv2_dw_stream(const int8_t *src, int32_t h, int32_t w, int32_t c, int32_t stride,
                    const mnv2_qconv *expand, int32_t expand_cin, const mnv2_qconv *dw,
                    int8_t *out, int8_t *ring, void *scratch)
{
    const int32_t row = w * c;
    const int32_t oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1;
    int32_t next = 0; /* the next input row to bring into the ring */
    for (int32_t oy = 0; oy < oh; ++oy) {
        int32_t last = oy * stride + 1 < h ? oy * stride + 1 : h - 1;
        /* In place, output row oy covers input rows <= oy*stride+1 at most, all copied by now. */
        for (; next <= last; ++next) {
            int8_t *slot = ring + (next % 3) * row;
            if (expand)
                mnv2_pw_s8(src + next * w * expand_cin, w, expand_cin, expand->w, expand->bias, expand->mult,
                           expand->shift, expand->lo, expand->hi, c, slot, scratch);
            else
                copy_row(slot, src + next * row, row);
        }
        const int8_t *rows[3];
        for (int32_t k = 0; k < 3; ++k) {
            int32_t iy = oy * stride - 1 + k;
            rows[k] = iy < 0 || iy >= h ? NULL : ring + (iy % 3) * row;
        }
        mnv2_dw3x3_row_s8(rows, w, c, stride, dw->w, dw->bias, dw->mult, dw->shift, dw->lo, dw->hi,
                          out + oy * ow * c, scratch);
    }
}
