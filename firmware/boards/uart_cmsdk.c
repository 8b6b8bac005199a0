/* Arm CMSDK APB UART (MPS2/MPS3 FPGA images, and QEMU's models of them).
 * Registers (Cortex-M System Design Kit TRM, DDI0479): DATA 0x00, STATE 0x04 (bit0 TX full,
 * bit1 RX full), CTRL 0x08 (bit0 TX enable, bit1 RX enable), BAUDDIV 0x10 (>= 16).
 * The UART's PCLK is taken to be CLOCK_HZ (true of the MPS2/MPS3 images QEMU models). */
#include "board.h"

#define UART_DATA REG32(UART_BASE + 0x00u)
#define UART_STATE REG32(UART_BASE + 0x04u)
#define UART_CTRL REG32(UART_BASE + 0x08u)
#define UART_BAUDDIV REG32(UART_BASE + 0x10u)

#define STATE_TXFULL (1u << 0)
#define STATE_RXFULL (1u << 1)

void board_init(void) {}

void uart_init(void)
{
    uint32_t div = (uint32_t)(CLOCK_HZ) / (uint32_t)(UART_BAUD);
    UART_BAUDDIV = div < 16u ? 16u : div;
    UART_CTRL = (1u << 0) | (1u << 1); /* TX and RX enabled, no interrupts: the loop polls */
}

void uart_write(const uint8_t *data, size_t n)
{
    while (n--) {
        while (UART_STATE & STATE_TXFULL) {
        }
        UART_DATA = *data++;
    }
}

int uart_read_byte(void)
{
    if (!(UART_STATE & STATE_RXFULL)) return -1;
    return (int)(UART_DATA & 0xFFu);
}
