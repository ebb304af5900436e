/* start.S - entry and final jump of the restorer.
 *
 * _start leaves the kernel-given stack at once: with ASLR off (or by chance)
 * it sits exactly where the target's stack must go.  The restorer runs on a
 * stack in its own .bss, far from any usual mapping.
 */
    .text
    .globl _start
_start:
    mov     %rsp, %rdi                  /* argc, argv, envp, auxv */
    lea     restorer_stack+65536(%rip), %rsp   /* RESTORER_STACK_SIZE */
    and     $-16, %rsp
    call    restorer_main
    hlt

/* restore_jump(const uint64_t *regs): load the target's registers (struct
 * user_regs_struct order) and jump to its rip.  rip is read through a
 * static slot so that every general register, rdi last, can be loaded
 * from the array first. */
    .globl restore_jump
restore_jump:
    mov     16*8(%rdi), %rax            /* rip */
    mov     %rax, jump_target(%rip)
    pushq   18*8(%rdi)                  /* eflags */
    popfq
    mov     0*8(%rdi), %r15
    mov     1*8(%rdi), %r14
    mov     2*8(%rdi), %r13
    mov     3*8(%rdi), %r12
    mov     4*8(%rdi), %rbp
    mov     5*8(%rdi), %rbx
    mov     6*8(%rdi), %r11
    mov     7*8(%rdi), %r10
    mov     8*8(%rdi), %r9
    mov     9*8(%rdi), %r8
    mov     10*8(%rdi), %rax
    mov     11*8(%rdi), %rcx
    mov     12*8(%rdi), %rdx
    mov     13*8(%rdi), %rsi
    mov     19*8(%rdi), %rsp
    mov     14*8(%rdi), %rdi
    jmp     *jump_target(%rip)

    .bss
    .balign 8
jump_target:
    .quad   0
    .section .note.GNU-stack,"",@progbits
