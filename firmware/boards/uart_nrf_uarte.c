/* nRF52840 UARTE (EasyDMA UART, nRF52840 Product Specification v1.7, section 6.34) on the
 * nRF52840-DK: UARTE0 with TXD on P0.06 and RXD on P0.08, wired to the J-Link virtual COM port.
 * The core runs at 64 MHz from reset (CLOCK_HZ); the UART's 16 MHz clock needs no set-up.
 * EasyDMA only reads and writes RAM, so bytes go through small RAM buffers.
 * Written from the product specification; builds are checked here, the board itself is not. */
#include "board.h"

#define UARTE_TASKS_STARTRX REG32(UART_BASE + 0x000u)
#define UARTE_TASKS_STOPRX REG32(UART_BASE + 0x004u)
#define UARTE_TASKS_STARTTX REG32(UART_BASE + 0x008u)
#define UARTE_EVENTS_ENDRX REG32(UART_BASE + 0x110u)
#define UARTE_EVENTS_ENDTX REG32(UART_BASE + 0x120u)
#define UARTE_ERRORSRC REG32(UART_BASE + 0x480u)
#define UARTE_ENABLE REG32(UART_BASE + 0x500u)
#define UARTE_PSEL_RTS REG32(UART_BASE + 0x508u)
#define UARTE_PSEL_TXD REG32(UART_BASE + 0x50Cu)
#define UARTE_PSEL_CTS REG32(UART_BASE + 0x510u)
#define UARTE_PSEL_RXD REG32(UART_BASE + 0x514u)
#define UARTE_BAUDRATE REG32(UART_BASE + 0x524u)
#define UARTE_RXD_PTR REG32(UART_BASE + 0x534u)
#define UARTE_RXD_MAXCNT REG32(UART_BASE + 0x538u)
#define UARTE_RXD_AMOUNT REG32(UART_BASE + 0x53Cu)
#define UARTE_TXD_PTR REG32(UART_BASE + 0x544u)
#define UARTE_TXD_MAXCNT REG32(UART_BASE + 0x548u)
#define UARTE_CONFIG REG32(UART_BASE + 0x56Cu)

#define P0_OUTSET REG32(0x50000508u)
#define P0_PIN_CNF(n) REG32(0x50000700u + 4u * (n))

#ifndef UART_TX_PIN
#define UART_TX_PIN 6u
#endif
#ifndef UART_RX_PIN
#define UART_RX_PIN 8u
#endif

#define PSEL_DISCONNECTED 0xFFFFFFFFu

static uint8_t g_rx_byte;
static uint8_t g_tx_buf[64];

void board_init(void) {}

static uint32_t baud_register(uint32_t baud)
{
    switch (baud) {
    case 9600u: return 0x00275000u;
    case 38400u: return 0x009D5000u;
    case 57600u: return 0x00EB0000u;
    case 230400u: return 0x03AFB000u;
    case 460800u: return 0x075F7000u;
    case 921600u: return 0x0EBED000u;
    case 1000000u: return 0x10000000u;
    default: return 0x01D7E000u; /* 115200 */
    }
}

static void start_rx(void)
{
    UARTE_EVENTS_ENDRX = 0;
    UARTE_RXD_PTR = (uint32_t)(uintptr_t)&g_rx_byte;
    UARTE_RXD_MAXCNT = 1;
    UARTE_TASKS_STARTRX = 1;
}

void uart_init(void)
{
    P0_OUTSET = 1u << UART_TX_PIN;   /* TX idles high */
    P0_PIN_CNF(UART_TX_PIN) = 1u;    /* output */
    P0_PIN_CNF(UART_RX_PIN) = 0u;    /* input, buffer connected */
    UARTE_PSEL_TXD = UART_TX_PIN;    /* port 0, connected */
    UARTE_PSEL_RXD = UART_RX_PIN;
    UARTE_PSEL_RTS = PSEL_DISCONNECTED;
    UARTE_PSEL_CTS = PSEL_DISCONNECTED;
    UARTE_BAUDRATE = baud_register(UART_BAUD);
    UARTE_CONFIG = 0;                /* 8N1, no flow control */
    UARTE_ENABLE = 8u;
    start_rx();
}

void uart_write(const uint8_t *data, size_t n)
{
    while (n) {
        size_t k = n < sizeof g_tx_buf ? n : sizeof g_tx_buf;
        for (size_t i = 0; i < k; i++) g_tx_buf[i] = data[i];
        UARTE_EVENTS_ENDTX = 0;
        UARTE_TXD_PTR = (uint32_t)(uintptr_t)g_tx_buf;
        UARTE_TXD_MAXCNT = (uint32_t)k;
        UARTE_TASKS_STARTTX = 1;
        while (!UARTE_EVENTS_ENDTX) {
        }
        data += k;
        n -= k;
    }
}

int uart_read_byte(void)
{
    /* One byte per DMA transfer; the UARTE's RX FIFO holds what arrives while it is restarted. */
    if (!UARTE_EVENTS_ENDRX) return -1;
    uint32_t got = UARTE_RXD_AMOUNT;
    uint8_t b = g_rx_byte;
    if (UARTE_ERRORSRC) UARTE_ERRORSRC = UARTE_ERRORSRC; /* write 1 to clear */
    start_rx();
    return got ? (int)b : -1;
}
