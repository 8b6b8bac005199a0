/* Board services the firmware core uses; one UART driver in boards/ implements the uart_* and
 * board_init functions, chosen by the Makefile's UART= variable. */
#ifndef EDGE_MNV2_BOARD_H
#define EDGE_MNV2_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifndef CLOCK_HZ
#error "CLOCK_HZ (core clock in Hz) must be defined by the build"
#endif
#ifndef UART_BASE
#error "UART_BASE (console UART base address) must be defined by the build"
#endif
#ifndef UART_BAUD
#define UART_BAUD 115200u
#endif
#ifndef BOARD_NAME
#define BOARD_NAME "unknown"
#endif

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* Clocks, caches, pins: whatever must happen before the UART and SysTick run at CLOCK_HZ. */
void board_init(void);
void uart_init(void);
/* Blocking write of n bytes. */
void uart_write(const uint8_t *data, size_t n);
/* One received byte (0..255), or -1 when none is waiting. Never blocks. */
int uart_read_byte(void);

#endif
