// A guest of known instruction counts for the instruction-counting qemu plugin (no libc, raw syscalls).
// Build: aarch64-linux-gnu-gcc -nostdlib -static -o known_length known_length.S
//
// It runs argc regions (1 with no arguments); each region is a loop of ITERATIONS iterations whose
// body has one instruction of each class the plugin counts. Counted per region, by design of the
// plugin (instructions after the begin marker's svc up to and including the end marker's svc):
//   loop body x ITERATIONS    12 per iteration (see the classes below)
//   loop set-up               2  integer (movz/movk of the iteration count)
//   end marker                6  integer (movz/movk/mov/mov/mov + svc)
// The whole process: 3 before the first region, per region 6 (begin marker) + the region + 2 (subs,
// b.ne of the region loop), and 3 to exit.

    .equ ITERATIONS, 200000
    .equ MARKER_FD, 0x7ED6E     // 519534: a descriptor no process has
    .equ SYS_LSEEK, 62
    .equ SYS_EXIT, 93
    .equ BEGIN, 1
    .equ END, 2

    // lseek(MARKER_FD, tag, SEEK_SET): the plugin sees it, the kernel answers EBADF.
    .macro marker tag
    movz x0, #(MARKER_FD & 0xffff)
    movk x0, #(MARKER_FD >> 16), lsl #16
    mov x1, #\tag
    mov x2, #0
    mov x8, #SYS_LSEEK
    svc #0
    .endm

    .text
    .global _start
_start:
    ldr x19, [sp]               // argc: the number of regions to run
    adr x20, buffer             // what the loads read
    mov x21, #0
region:
    marker BEGIN
    movz x9, #(ITERATIONS & 0xffff)
    movk x9, #(ITERATIONS >> 16), lsl #16
loop:
    fmla v0.4s, v5.4s, v6.4s    // vector_fma, 4 lanes
    fmla v1.2s, v5.2s, v6.2s    // vector_fma, 2 lanes
    fmla v2.4s, v3.4s, v4.s[1]  // vector_fma (by element), 4 lanes
    fmadd s7, s8, s9, s10       // scalar_fma
    fadd s11, s12, s13          // scalar_fp
    add v14.4s, v15.4s, v16.4s  // vector128
    add v17.8b, v18.8b, v19.8b  // vector64
    ldr x10, [x20]              // load_store
    ldr q20, [x20]              // simd_fp_load_store
    add x21, x21, x10           // integer
    subs x9, x9, #1             // integer
    b.ne loop                   // branch
    marker END
    subs x19, x19, #1
    b.ne region
    mov x0, #0
    mov x8, #SYS_EXIT
    svc #0

    .data
    .balign 16
buffer:
    .quad 1, 2
