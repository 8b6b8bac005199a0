/* Vector table and reset for Cortex-M: copy .data, zero .bss, enable the FPU, set the stack limit
 * (Armv8-M), then main(). A fault is reported to the host as an ERROR frame before halting, so a
 * crash shows up as a message instead of a silent timeout. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "protocol.h"

extern uint32_t __StackTop, __StackLimit;
extern uint32_t __data_load, __data_start, __data_end;
extern uint32_t __bss_start__, __bss_end__;
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_HFSR REG32(0xE000ED2Cu)

#define NMI_Handler Default_Handler
#define MemManage_Handler HardFault_Handler
#define BusFault_Handler HardFault_Handler
#define UsageFault_Handler HardFault_Handler
#define SecureFault_Handler HardFault_Handler

/* 16 system vectors + 112 interrupts (covers the STM32F7, nRF52840 and SSE-300 IRQ counts);
 * 128 entries * 4 bytes, aligned to 512 as VTOR requires. */
__attribute__((section(".vectors"), used, aligned(512)))
void (*const g_vectors[128])(void) = {
    (void (*)(void))(&__StackTop),
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler,
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    [16 ... 127] = Default_Handler,
};

void Reset_Handler(void)
{
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Armv8-M: a stack overflow faults instead of silently overwriting .bss. */
    __asm volatile("msr msplim, %0" : : "r"(&__StackLimit));
#endif
    SCB_VTOR = (uint32_t)(uintptr_t)g_vectors;
#if defined(__ARM_FP)
    /* Full access to CP10/CP11 before any floating-point instruction (hard or softfp ABI). */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
    main();
    for (;;) {
    }
}

void Default_Handler(void)
{
    for (;;) {
    }
}

static void hex32(char *out, uint32_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 4) out[i] = "0123456789abcdef"[v & 0xFu];
}

/* Called with the stacked exception frame: r0 r1 r2 r3 r12 lr pc xpsr. */
void __attribute__((used)) fault_report(const uint32_t *frame)
{
    char msg[] = "fault: pc=0x00000000 cfsr=0x00000000 hfsr=0x00000000";
    hex32(msg + 12, frame[6]);
    hex32(msg + 28, SCB_CFSR);
    hex32(msg + 44, SCB_HFSR);
    send_error(0, ERR_FAULT, msg);
    for (;;) {
    }
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "b fault_report\n\t");
}
