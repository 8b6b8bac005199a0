/*
 * insn_count.c - a qemu-user TCG plugin that counts executed AArch64 guest instructions by class.
 *
 * Built against QEMU's plugin API version 1 (Debian 12's qemu-user 7.2), whose header Debian does
 * not ship: the few declarations used are written out below, copied in meaning from
 * include/qemu/qemu-plugin.h of QEMU v7.2.0.
 *
 * Arguments (qemu-aarch64 -plugin insn_count.so,out=PATH[,marker=N]):
 *   out=PATH   required: JSON lines are appended here (one per region, one at exit).
 *   marker=N   the file descriptor number the guest's marker lseek uses (default 0x7ED6E = 519534).
 *
 * Classes (a partition: every instruction is in exactly one, so they sum to "total"):
 *   integer, branch, load_store, simd_fp_load_store, vector128, vector64, scalar_fp,
 *   vector_fma, scalar_fma.
 * "vector_fma_lanes" is an extra counter: the multiply-adds done by vector FMLA/FMLS.
 *
 * How counting works: at translation each block is classified once; at run time one inline
 * 64-bit add per non-zero class runs at the entry of the block (no callback per instruction).
 * A block is therefore counted whole as soon as it starts. That is exact unless a block is left
 * early: a fault that delivers a guest signal, or (multi-threaded guests only) an atomic that
 * QEMU replays alone in a block of its own; then the rest of that block is over-counted.
 *
 * Regions: the guest calls lseek(MARKER_FD, TAG, SEEK_SET), TAG 1 = begin, 2 = end; no process
 * has that descriptor, so the kernel answers EBADF and nothing else happens. A syscall ends its
 * translated block at the SVC, and the syscall callback runs after that block's inline adds, so
 * at either marker the counters include every instruction up to and including its SVC.
 * Hence a region counts exactly the instructions after the begin marker's SVC up to and
 * including the end marker's SVC: the end marker's own argument set-up and SVC (6 instructions
 * for movz/movk x0, mov x1, mov x2, mov x8, svc in assembly; a libc lseek call costs more) are
 * inside the region, the begin marker's are not.
 * A begin while a region is open restarts it; an end without a begin is ignored.
 *
 * Threads: the counters are plain global uint64_t and the inline adds are not atomic, so a
 * region is exact only when its work runs on one guest thread (qemu-user runs guest threads
 * in parallel). After a guest fork() the child carries a copy of the counters and writes its
 * own exit line.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API v1 (include/qemu/qemu-plugin.h, QEMU v7.2.0) ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                                              uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7,
                                              uint64_t a8);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* ---- classes ---- */
enum insn_class {
    C_INTEGER,
    C_BRANCH,
    C_LOAD_STORE,
    C_SIMD_FP_LOAD_STORE,
    C_VECTOR128,
    C_VECTOR64,
    C_SCALAR_FP,
    C_VECTOR_FMA,
    C_SCALAR_FMA,
    N_CLASSES
};

/* The JSON keys, in the order of the enum (and of CLASSES in plugin.py). */
static const char *const class_names[N_CLASSES] = {
    "integer", "branch", "load_store", "simd_fp_load_store", "vector128", "vector64",
    "scalar_fp", "vector_fma", "scalar_fma",
};

#define AARCH64_NR_LSEEK 62
#define MARKER_BEGIN 1
#define MARKER_END 2
#define DEFAULT_MARKER_FD 0x7ED6E

/* Live counters, bumped by the inline adds; a snapshot is the same layout. */
struct counters {
    uint64_t total;
    uint64_t mix[N_CLASSES];
    uint64_t lanes;
};

static struct counters live;
static struct counters region_start;
static bool region_open;
static uint32_t marker_fd = DEFAULT_MARKER_FD;
static FILE *out;

/* Lanes of a vector FMA: vector bits (Q ? 128 : 64) over element bits. */
static unsigned lanes_of(unsigned q, unsigned element_bits)
{
    unsigned lanes = (q ? 128u : 64u) / element_bits;
    return lanes ? lanes : 1u;
}

/*
 * Classify one instruction of the SIMD & FP data-processing group (op0 = x111). Sets *lanes
 * for vector FMAs.
 */
static enum insn_class classify_simd_fp(uint32_t insn, unsigned *lanes)
{
    unsigned q = (insn >> 30) & 1u;

    /* FP data-processing (3 source): FMADD, FMSUB, FNMADD, FNMSUB (M=0, S=0). */
    if ((insn & 0xFF000000u) == 0x1F000000u) {
        return C_SCALAR_FMA;
    }
    /* Advanced SIMD scalar x indexed element: FMLA (op 0001), FMLS (op 0101), U=0. */
    if ((insn & 0xFF00B400u) == 0x5F001000u) {
        return C_SCALAR_FMA;
    }
    /* Advanced SIMD three same, FMLA/FMLS single/double: U=0, opcode 11001, bit 23 = a (FMLS). */
    if ((insn & 0xBF20FC00u) == 0x0E20CC00u) {
        unsigned sz = (insn >> 22) & 1u;
        *lanes = lanes_of(q, sz ? 64u : 32u);
        return C_VECTOR_FMA;
    }
    /* Advanced SIMD three same (FP16), FMLA/FMLS half: U=0, bits 22:21 = 10, opcode 001. */
    if ((insn & 0xBF60FC00u) == 0x0E400C00u) {
        *lanes = lanes_of(q, 16u);
        return C_VECTOR_FMA;
    }
    /* Advanced SIMD vector x indexed element: FMLA (op 0001), FMLS (op 0101), U=0; size 00 half,
     * 10 single, 11 double (01 is unallocated and falls through to the vector classes). */
    if ((insn & 0xBF00B400u) == 0x0F001000u) {
        unsigned size = (insn >> 22) & 3u;
        if (size != 1u) {
            *lanes = lanes_of(q, size == 0u ? 16u : (size == 2u ? 32u : 64u));
            return C_VECTOR_FMA;
        }
    }
    /* bit 28 = 1: scalar FP data processing (incl. the FP<->integer conversions, whose bit 31 is sf),
     * Advanced SIMD scalar, crypto SHA (op0 0101). */
    if (insn & 0x10000000u) {
        return C_SCALAR_FP;
    }
    /* bit 28 = 0, bit 31 = 1: crypto three-register imm2, SHA512, four-register, XAR (op0 1100), or
     * unallocated. */
    if (insn & 0x80000000u) {
        return (insn >> 28) == 0xCu ? C_SCALAR_FP : C_INTEGER;
    }
    /* Cryptographic AES (op0 0100): vector-shaped but counted with the scalar/crypto class. */
    if ((insn & 0xFF3E0C00u) == 0x4E280800u) {
        return C_SCALAR_FP;
    }
    /* bit 28 = 0: Advanced SIMD vector forms; Q (bit 30) gives the width. */
    return q ? C_VECTOR128 : C_VECTOR64;
}

/* Classify one A64 instruction by its top-level encoding (op0 = bits[28:25]). */
static enum insn_class classify(uint32_t insn, unsigned *lanes)
{
    *lanes = 0;
    /* Loads and stores: op0 = x1x0; bit 26 (V) tells SIMD&FP registers from general ones. */
    if ((insn & 0x0A000000u) == 0x08000000u) {
        return (insn & 0x04000000u) ? C_SIMD_FP_LOAD_STORE : C_LOAD_STORE;
    }
    /* Data processing, SIMD & FP: op0 = x111. */
    if ((insn & 0x0E000000u) == 0x0E000000u) {
        return classify_simd_fp(insn, lanes);
    }
    /* Branches, exception generating and system: op0 = 101x. */
    if ((insn & 0x1C000000u) == 0x14000000u) {
        if ((insn & 0x7C000000u) == 0x14000000u) { /* B, BL */
            return C_BRANCH;
        }
        if ((insn & 0xFF000000u) == 0x54000000u) { /* B.cond, BC.cond */
            return C_BRANCH;
        }
        if ((insn & 0x7E000000u) == 0x34000000u) { /* CBZ, CBNZ */
            return C_BRANCH;
        }
        if ((insn & 0x7E000000u) == 0x36000000u) { /* TBZ, TBNZ */
            return C_BRANCH;
        }
        if ((insn & 0xFE000000u) == 0xD6000000u) { /* BR, BLR, RET (+ pointer-auth forms) */
            return C_BRANCH;
        }
        return C_INTEGER; /* SVC/HVC/BRK, hints, barriers, MSR/MRS, unallocated */
    }
    /* Data processing immediate (100x), register (x101), and the rest (unallocated, SVE, SME). */
    return C_INTEGER;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t per_class[N_CLASSES] = {0};
    uint64_t lanes = 0;
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;

    for (size_t i = 0; i < n; i++) {
        const struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint8_t *bytes = qemu_plugin_insn_data(insn);
        uint32_t word = 0;
        unsigned insn_lanes = 0;
        if (qemu_plugin_insn_size(insn) == 4) {
            /* A64 instructions are little-endian whatever the host. */
            word = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
                   (uint32_t)bytes[3] << 24;
        }
        per_class[classify(word, &insn_lanes)]++;
        lanes += insn_lanes;
    }
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &live.total, n);
    for (int c = 0; c < N_CLASSES; c++) {
        if (per_class[c]) {
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &live.mix[c],
                                                     per_class[c]);
        }
    }
    if (lanes) {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &live.lanes, lanes);
    }
}

/* Append one JSON line (now - base) and flush, so a crash later loses nothing written. */
static void write_line(const struct counters *now, const struct counters *base, bool at_exit)
{
    char line[1024];
    size_t len = 0;
    len += (size_t)snprintf(line + len, sizeof line - len, "{%s\"total\": %" PRIu64 ", \"mix\": {",
                            at_exit ? "\"exit\": true, " : "", now->total - base->total);
    for (int c = 0; c < N_CLASSES; c++) {
        len += (size_t)snprintf(line + len, sizeof line - len, "%s\"%s\": %" PRIu64, c ? ", " : "",
                                class_names[c], now->mix[c] - base->mix[c]);
    }
    len += (size_t)snprintf(line + len, sizeof line - len, "}, \"vector_fma_lanes\": %" PRIu64 "}\n",
                            now->lanes - base->lanes);
    /* One fwrite of the whole line: with O_APPEND, lines of concurrent processes do not interleave. */
    fwrite(line, 1, len, out);
    fflush(out);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7,
                       uint64_t a8)
{
    (void)id, (void)vcpu_index, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    /* The kernel reads the fd as an unsigned int: compare the low 32 bits only. */
    if (num != AARCH64_NR_LSEEK || (uint32_t)a1 != marker_fd || a3 != 0) {
        return;
    }
    if (a2 == MARKER_BEGIN) {
        region_start = live;
        region_open = true;
    } else if (a2 == MARKER_END && region_open) {
        struct counters now = live;
        write_line(&now, &region_start, false);
        region_open = false;
    }
}

static void on_atexit(qemu_plugin_id_t id, void *userdata)
{
    static const struct counters zero;
    struct counters now = live;
    (void)id, (void)userdata;
    write_line(&now, &zero, true);
    fclose(out);
    out = NULL;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    const char *path = NULL;

    if (!info->target_name || strcmp(info->target_name, "aarch64") != 0) {
        fprintf(stderr, "insn_count: counts AArch64 guests only, not '%s'\n",
                info->target_name ? info->target_name : "?");
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "out=", 4) == 0 && arg[4] != '\0') {
            path = arg + 4;
        } else if (strncmp(arg, "marker=", 7) == 0) {
            char *end = NULL;
            unsigned long long fd = strtoull(arg + 7, &end, 0);
            if (end == arg + 7 || *end != '\0' || fd > 0xFFFFFFFFull) {
                fprintf(stderr, "insn_count: bad marker '%s' (a file descriptor number)\n", arg + 7);
                return 1;
            }
            marker_fd = (uint32_t)fd;
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (out=PATH, marker=N)\n", arg);
            return 1;
        }
    }
    if (!path) {
        fprintf(stderr, "insn_count: out=PATH is required (where the JSON lines go)\n");
        return 1;
    }
    out = fopen(path, "a");
    if (!out) {
        fprintf(stderr, "insn_count: cannot open '%s' for appending\n", path);
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
