/* The weights blob, pulled in with .incbin as the code generator's weights are. */
    .section .rodata.toy_weights, "a"
    .balign 16
    .global toy_weights
toy_weights:
    .incbin "weights.bin"
    .size toy_weights, . - toy_weights
