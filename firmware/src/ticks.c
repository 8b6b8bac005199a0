/* SysTick counts down from 2^24-1 at the core clock (CLKSOURCE=1: the processor clock; QEMU's
 * mps3-an547 has no SysTick reference clock, so CLKSOURCE=0 would not count at all). Each wrap
 * raises SysTick_Handler, which extends the count to 64 bits. */
#include "ticks.h"
#include "board.h"

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu
#define SYST_PERIOD (1ull << 24)

#define SCB_ICSR REG32(0xE000ED04u)
#define ICSR_PENDSTCLR (1u << 25)

static volatile uint32_t g_wraps;
static uint64_t g_base; /* ticks counted before the last ticks_sync() */

void SysTick_Handler(void) { g_wraps++; }

void ticks_init(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0; /* any write clears the counter and COUNTFLAG */
    SYST_CSR = (1u << 2) | (1u << 1) | (1u << 0); /* core clock, interrupt, enable */
}

uint64_t ticks_now(void)
{
    /* Read the wrap count on both sides of the counter: if a wrap was taken in between, retry,
     * so a counter value is never paired with the wrap count of the other side of the wrap. */
    uint32_t hi, hi2, val;
    do {
        hi = g_wraps;
        val = SYST_CVR;
        hi2 = g_wraps;
    } while (hi != hi2);
    return g_base + (uint64_t)hi * SYST_PERIOD + (SYST_RELOAD - val);
}

void ticks_sync(void)
{
    /* Read with interrupts on: a wrap taken meanwhile is counted by the handler, not lost. */
    uint64_t now = ticks_now();
    __asm volatile("cpsid i" ::: "memory");
    SYST_CSR = 0;
    SYST_CVR = 0;
    SCB_ICSR = ICSR_PENDSTCLR; /* a wrap pended just before the stop is already in `now` */
    g_wraps = 0;
    g_base = now;
    SYST_CSR = (1u << 2) | (1u << 1) | (1u << 0);
    /* The counter loads RVR on the first clock edge after enabling: from that edge on, the phase of
     * the count is fixed relative to this code, whatever ran before. */
    while (SYST_CVR == 0) {
    }
    __asm volatile("cpsie i" ::: "memory");
}
