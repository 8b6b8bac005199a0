"""Default schedules for the kernels this model family produces, applied by rule with zero tuning trials.

Each rule (:mod:`edge_mnv2.schedules.rules`) is a small, named, registered piece, as TVM's dlight rules
are: it looks at one fused kernel (a TIR PrimFunc), says whether it is the kind of kernel it is written
for, and if so schedules it with parameters taken from what the target says (vector width, vector
registers, cores; :mod:`edge_mnv2.schedules.isa`), never from a table of CPU names. ``compile`` applies
a tuning log's record where it has one for a kernel and the first fitting rule everywhere else
(:mod:`edge_mnv2.schedules.apply`), and records where each kernel's schedule came from.
"""
