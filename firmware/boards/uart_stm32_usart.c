/* STM32F7 USART (RM0385) on the STM32F746G-DISCO: USART1, TX on PA9 and RX on PB7 (AF7), wired
 * to the ST-LINK virtual COM port. board_init() runs the core at CLOCK_HZ = 216 MHz from the
 * 25 MHz HSE crystal (PLL M=25 N=432 P=2, voltage scale 1 + over-drive, 7 flash wait states) and
 * turns on the I- and D-caches; USART1 is on APB2 = CLOCK_HZ / 2.
 * Written from the reference manual; builds are checked here, the board itself is not. */
#include "board.h"

#define RCC_BASE 0x40023800u
#define RCC_CR REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR REG32(RCC_BASE + 0x04u)
#define RCC_CFGR REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR REG32(RCC_BASE + 0x44u)

#define PWR_CR1 REG32(0x40007000u)
#define PWR_CSR1 REG32(0x40007004u)
#define FLASH_ACR REG32(0x40023C00u)

#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(b) REG32((b) + 0x00u)
#define GPIO_OSPEEDR(b) REG32((b) + 0x08u)
#define GPIO_PUPDR(b) REG32((b) + 0x0Cu)
#define GPIO_AFRL(b) REG32((b) + 0x20u)
#define GPIO_AFRH(b) REG32((b) + 0x24u)

#define USART_CR1 REG32(UART_BASE + 0x00u)
#define USART_BRR REG32(UART_BASE + 0x0Cu)
#define USART_ISR REG32(UART_BASE + 0x1Cu)
#define USART_ICR REG32(UART_BASE + 0x20u)
#define USART_RDR REG32(UART_BASE + 0x24u)
#define USART_TDR REG32(UART_BASE + 0x28u)

#define SCB_CCR REG32(0xE000ED14u)
#define SCB_CCSIDR REG32(0xE000ED80u)
#define SCB_CSSELR REG32(0xE000ED84u)
#define SCB_ICIALLU REG32(0xE000EF50u)
#define SCB_DCISW REG32(0xE000EF60u)

#ifndef APB2_HZ
#define APB2_HZ ((CLOCK_HZ) / 2u)
#endif

static inline void barrier(void) { __asm volatile("dsb\n\tisb" ::: "memory"); }

static void clock_216mhz(void)
{
    RCC_APB1ENR |= 1u << 28;                  /* PWREN */
    PWR_CR1 = (PWR_CR1 & ~(3u << 14)) | (3u << 14); /* VOS = scale 1 */
    RCC_CR |= 1u << 16;                       /* HSEON */
    while (!(RCC_CR & (1u << 17))) {          /* HSERDY */
    }
    /* PLLM=25 (1 MHz), PLLN=432 (432 MHz VCO), PLLP=/2 (216 MHz), PLLQ=9 (48 MHz), source HSE */
    RCC_PLLCFGR = 25u | (432u << 6) | (0u << 16) | (1u << 22) | (9u << 24);
    RCC_CR |= 1u << 24;                       /* PLLON */
    while (!(RCC_CR & (1u << 25))) {          /* PLLRDY */
    }
    PWR_CR1 |= 1u << 16;                      /* ODEN */
    while (!(PWR_CSR1 & (1u << 16))) {        /* ODRDY */
    }
    PWR_CR1 |= 1u << 17;                      /* ODSWEN */
    while (!(PWR_CSR1 & (1u << 17))) {        /* ODSWRDY */
    }
    FLASH_ACR = 7u | (1u << 8) | (1u << 9);   /* 7 wait states, prefetch, ART accelerator */
    while ((FLASH_ACR & 0xFu) != 7u) {
    }
    /* AHB /1, APB1 /4 (54 MHz), APB2 /2 (108 MHz), system clock = PLL */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13) | 3u)) | (5u << 10) | (4u << 13) | 2u;
    while (((RCC_CFGR >> 2) & 3u) != 2u) {    /* SWS = PLL */
    }
}

static void caches_on(void)
{
    barrier();
    SCB_ICIALLU = 0;
    barrier();
    SCB_CCR |= 1u << 17; /* IC */
    barrier();
    /* Invalidate the D-cache by set/way (level 1, data), then enable it. */
    SCB_CSSELR = 0;
    barrier();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    for (uint32_t s = 0; s < sets; s++)
        for (uint32_t w = 0; w < ways; w++) SCB_DCISW = (s << 5) | (w << 30);
    barrier();
    SCB_CCR |= 1u << 16; /* DC */
    barrier();
}

void board_init(void)
{
    clock_216mhz();
    caches_on();
}

void uart_init(void)
{
    RCC_AHB1ENR |= (1u << 0) | (1u << 1); /* GPIOA, GPIOB */
    RCC_APB2ENR |= 1u << 4;               /* USART1 */
    (void)RCC_APB2ENR;
    /* PA9 = USART1_TX, PB7 = USART1_RX: alternate function 7 */
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(3u << 18)) | (2u << 18);
    GPIO_OSPEEDR(GPIOA_BASE) |= 2u << 18;
    GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~(0xFu << 4)) | (7u << 4);
    GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << 14)) | (2u << 14);
    GPIO_PUPDR(GPIOB_BASE) = (GPIO_PUPDR(GPIOB_BASE) & ~(3u << 14)) | (1u << 14); /* pull-up */
    GPIO_AFRL(GPIOB_BASE) = (GPIO_AFRL(GPIOB_BASE) & ~(0xFu << 28)) | (7u << 28);

    USART_CR1 = 0;
    USART_BRR = ((uint32_t)(APB2_HZ) + (uint32_t)(UART_BAUD) / 2u) / (uint32_t)(UART_BAUD); /* oversampling 16 */
    USART_CR1 = (1u << 3) | (1u << 2) | (1u << 0); /* TE, RE, UE; 8N1 */
}

void uart_write(const uint8_t *data, size_t n)
{
    while (n--) {
        while (!(USART_ISR & (1u << 7))) { /* TXE */
        }
        USART_TDR = *data++;
    }
    while (!(USART_ISR & (1u << 6))) { /* TC: the last byte has left */
    }
}

int uart_read_byte(void)
{
    uint32_t isr = USART_ISR;
    if (isr & ((1u << 3) | (1u << 1) | (1u << 2))) {
        /* Overrun, framing or noise error: clear it so reception goes on; the protocol's CRC
         * catches the lost or damaged byte. */
        USART_ICR = (1u << 3) | (1u << 1) | (1u << 2);
    }
    if (!(isr & (1u << 5))) return -1; /* RXNE */
    return (int)(USART_RDR & 0xFFu);
}
