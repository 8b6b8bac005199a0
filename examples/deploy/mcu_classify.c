/* The microcontroller build of an edge-mnv2 model as a C library in your own firmware.
 *
 * `edge-mnv2 compile MODEL --target BOARD -o DIR` writes DIR/model/: model.h (the API and the sizes),
 * model.c (model_run: the kernels in order on one static arena), kernels.c (TVM's C kernels),
 * weights.S + weights.bin (every constant, read-only, via .incbin). No other runtime, no malloc, no
 * TVM: compile those three files into your firmware with this file, or anything like it.
 *
 * Here the image comes from stdin (HWC uint8, MODEL_INPUT_H * MODEL_INPUT_W * MODEL_INPUT_C bytes),
 * so the same file runs on a PC; on a board, fill `image` from your camera instead. Prints each logit
 * times 10^6 as an integer (newlib-nano's printf has no %f) and the top-1 class index.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"

static uint8_t image[MODEL_INPUT_H * MODEL_INPUT_W * MODEL_INPUT_C];
static float input[MODEL_INPUT_ELEMS];     /* 4-byte aligned float buffers, as model_run expects */
static float output[MODEL_OUTPUT_ELEMS];

int main(void) {
  if (fread(image, 1, sizeof image, stdin) != sizeof image) {
    fprintf(stderr, "expected %u bytes of HWC uint8 image on stdin\n", (unsigned)sizeof image);
    return 2;
  }
  model_preprocess_u8(image, input);       /* (pixel / 255 - mean) / std, HWC -> CHW */
  if (model_run(input, output) != 0) {
    fprintf(stderr, "model_run failed\n");
    return 1;
  }
  int best = 0;
  for (int i = 0; i < MODEL_OUTPUT_ELEMS; ++i) {
    printf("%d %ld\n", i, (long)lrintf(output[i] * 1e6f));
    if (output[i] > output[best]) best = i;
  }
  printf("top1 %d %s\n", best, MODEL_NAME);
  return 0;
}
