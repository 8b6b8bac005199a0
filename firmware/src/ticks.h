/* A 64-bit core-clock tick counter built on SysTick (QEMU does not implement DWT CYCCNT). */
#ifndef EDGE_MNV2_TICKS_H
#define EDGE_MNV2_TICKS_H

#include <stdint.h>

void ticks_init(void);
/* Core clock ticks since ticks_init(); monotonic, wraps after 2^64. */
uint64_t ticks_now(void);
/* Restart the counter's period here (the count stays continuous). Called before a measurement, so
 * the measurement's ticks do not depend on where in a tick period it began: under QEMU's -icount,
 * where a tick is 30-40 instructions and the UART polling before a request varies in length, this
 * makes the same computation give the same tick count every time. */
void ticks_sync(void);

#endif
