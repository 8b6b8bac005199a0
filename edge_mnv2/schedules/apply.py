"""Apply the default schedule rules to every kernel a tuning log left unscheduled, recording where each
kernel's schedule came from."""

from __future__ import annotations

from collections import Counter

from edge_mnv2.schedules.isa import VectorISA, vector_isa
from edge_mnv2.schedules.rules import RULES, Rule, first_fitting

SCHEDULED = "tirx.is_scheduled"


def is_scheduled(func) -> bool:
    return bool(func.attrs and func.attrs.get(SCHEDULED))


def _prepack(func, sch, target):
    """``sch`` with its constant weights (the function's ``layout_free_buffers``) stored in the order the
    schedule reads them, as MetaSchedule's layout rewrite stores a tuned schedule's: a copy block that
    ``SplitLayoutRewritePreproc`` then lifts out of the kernel and ``FoldConstant`` runs at compile time.
    Unchanged when the kernel has no such weights or the rewrite does not apply."""
    from tvm.s_tir import meta_schedule as ms

    if not (func.attrs and func.attrs.get("layout_free_buffers")):
        return sch, False
    rewrite = ms.postproc.RewriteLayout()
    rewrite._initialize_with_tune_context(ms.TuneContext(mod=sch.mod, target=target))
    try:
        candidate = sch.copy()
    except Exception:  # TVM cannot copy a schedule with tensorized blocks (the VNNI rule's, whose
        return sch, False  # weights the int8 layout already stores in the order vpdpbusd reads them)
    candidate.enter_postproc()
    return (candidate, True) if rewrite.apply(candidate) else (sch, False)


def default_schedules(
    target,
    provenance: dict | None = None,
    rules: tuple[Rule, ...] = RULES,
    source_of_scheduled: dict | None = None,
    prepack: bool = True,
):
    """A Relax module pass: each PrimFunc not yet scheduled gets the first rule that fits it, with
    parameters from ``target``'s vector unit, and (``prepack``) its constant weights laid out as the
    schedule reads them. ``provenance`` (if given) is filled with
    ``{kernel: {"source": "rule", "rule": name, "params": {...}}}``, or ``{"source": "none"}`` where no
    rule fits; kernels already scheduled get ``source_of_scheduled`` (say, the tuning log)."""
    import tvm
    from tvm import tirx

    isa = vector_isa(target)

    @tvm.transform.module_pass(opt_level=0, name="EdgeMnv2DefaultSchedules")
    def apply(mod, _ctx):
        updates = {}
        for gv, func in mod.functions_items():
            if not isinstance(func, tirx.PrimFunc):
                continue
            if is_scheduled(func):
                if provenance is not None:
                    provenance[gv.name_hint] = dict(source_of_scheduled or {"source": "scheduled"})
                continue
            found = first_fitting(func, isa, rules)
            if found is None:
                if provenance is not None:
                    provenance[gv.name_hint] = {"source": "none"}
                continue
            r, (sch, params) = found
            prepacked = False
            if prepack:
                sch, prepacked = _prepack(func, sch, target)
            updates[gv] = sch.mod["main"].with_attr(SCHEDULED, True)
            if provenance is not None:
                provenance[gv.name_hint] = {
                    "source": "rule",
                    "rule": r.name,
                    "params": params,
                    "prepacked_weights": prepacked,
                }
        if updates:
            mod = mod.clone()  # the caller's module (a tuning task's, say) stays as it was
            for gv, func in updates.items():
                mod[gv] = func
        return mod

    return apply


def summarize(provenance: dict, isa: VectorISA | None = None) -> dict:
    """Counts by source and by rule, for ``artifact.json`` and the line ``compile`` prints."""
    sources = Counter(entry["source"] for entry in provenance.values())
    rules = Counter(entry["rule"] for entry in provenance.values() if entry["source"] == "rule")
    out = {"count": len(provenance), "by_source": dict(sources), "by_rule": dict(rules)}
    if isa is not None:
        out["vector_isa"] = isa.to_dict()
    return out


def describe(summary: dict) -> str:
    """``12 from the tuning log, 40 by default rules (pointwise_nhwc 17, ...), 0 unscheduled``."""
    by_source, by_rule = summary["by_source"], summary["by_rule"]
    rules = ", ".join(f"{name} {count}" for name, count in sorted(by_rule.items(), key=lambda kv: -kv[1]))
    parts = [
        f"{by_source.get('log', 0)} from the tuning log",
        f"{by_source.get('rule', 0)} by default rules" + (f" ({rules})" if rules else ""),
        f"{by_source.get('none', 0)} unscheduled",
    ]
    return f"{summary['count']} kernels: " + ", ".join(parts)
