"""The prior (micro-benchmark) view of the catalog: every fit starts from the values the classes
and stacks had before any calibration, never from an earlier fit's output, so re-running the
calibration on the same data reproduces the shipped values."""
from __future__ import annotations

from estimator.catalog import Catalog
from estimator.specs import EfficiencyFile, StackFile

#: efficiency-class fields a calibration may change (and so keeps a prior copy of)
CLASS_FIELDS = ("gemm", "attention_fwd", "attention_bwd", "attention3_fwd", "attention3_bwd",
                "low_precision_factor", "grouped_gemm_factor", "tp_overlap_efficiency")


def prior_efficiency(ef: EfficiencyFile) -> EfficiencyFile:
    data = ef.model_dump(by_alias=True)
    for c in data["classes"].values():
        for k, v in (c.get("prior") or {}).items():
            c[k] = v
    return EfficiencyFile.model_validate(data)


def prior_stacks(sf: StackFile) -> StackFile:
    data = sf.model_dump()
    for s in data["stacks"].values():
        if s.get("training") and s.get("prior"):
            s["training"]["params"].update(s["prior"])
    return StackFile.model_validate(data)


class PriorCatalog(Catalog):
    """The same specs as ``base``, with efficiency classes and stacks at their priors."""

    def __init__(self, base: Catalog):
        super().__init__(spec_dirs=base.user_dirs, use_env=False)
        self._eff = prior_efficiency(base.efficiency())
        self._stacks = prior_stacks(base.stacks())
