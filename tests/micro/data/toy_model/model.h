/* A hand-made model directory honouring the code generator's contract, for firmware tests:
 * a 2-layer dense net (192 -> 16 ReLU -> 10) over an 8x8x3 image, weights in weights.bin. */
#ifndef TOY_MODEL_H
#define TOY_MODEL_H
#include <stdint.h>

#define MODEL_NAME "toy_dense_8x8"
#define MODEL_ID 0x70790001u
#define MODEL_INPUT_H 8
#define MODEL_INPUT_W 8
#define MODEL_INPUT_C 3
#define MODEL_INPUT_ELEMS (3 * 8 * 8)
#define MODEL_OUTPUT_ELEMS 10
#define MODEL_ARENA_BYTES 64

/* uint8 HWC image -> float CHW input, (x / 255 - 0.5) / 0.25 */
void model_preprocess_u8(const uint8_t *hwc, float *input);
/* 0 on success; 7 for an all-white image (a deliberate failure, to test error reporting) */
int32_t model_run(const float *input, float *output);

#endif
