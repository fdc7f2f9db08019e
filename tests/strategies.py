"""Hypothesis strategies: generated models, hardware vectors and plans."""
import numpy as np
from hypothesis import strategies as st

from estimator.catalog import Catalog
from estimator.packing import pack_hardware, pack_stack
from estimator.specs import ModelSpec
from kernels import layout as K

_CAT = Catalog(use_env=False)
CHIPS = ["h100-sxm", "a100-sxm4-80gb", "ascend-910b", "ascend-910c", "b200", "gb200", "h20", "mi300x",
         "tpu-v5p"]
STACKS = sorted(s for s, v in _CAT.stacks().stacks.items() if v.training is not None)


def stack_vector(name: str | None = None) -> np.ndarray:
    """Packed training-stack vector (None = megatron-core, the default for most classes)."""
    return pack_stack(_CAT.stack(name or "megatron-core", "")[1])


def hardware(chip_id: str, scale: dict | None = None) -> np.ndarray:
    c = _CAT.chip(chip_id)
    s = _CAT.system_for(c, None)
    return pack_hardware(c, s, _CAT.efficiency().for_chip(c.id)[1], scale)


@st.composite
def models(draw):
    heads = draw(st.sampled_from([8, 16, 32, 64, 128]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8, heads) if heads % d == 0]))
    head_dim = draw(st.sampled_from([64, 128]))
    d = dict(name="gen", layers=draw(st.integers(2, 96)), hidden=heads * head_dim, heads=heads,
             kv_heads=kv, ffn_hidden=draw(st.integers(1, 8)) * 1024,
             ffn_act=draw(st.sampled_from(["gelu", "swiglu", "relu2"])),
             vocab=draw(st.sampled_from([32000, 128256, 151936])),
             tied_embeddings=draw(st.booleans()), source="generated")
    if draw(st.booleans()):
        d["sliding_window"] = draw(st.sampled_from([128, 4096]))
        d["sliding_window_every"] = draw(st.sampled_from([2, 4, 6]))
    if draw(st.booleans()):
        experts = draw(st.sampled_from([8, 16, 64, 128, 256]))
        d["moe"] = dict(experts=experts, top_k=draw(st.integers(1, min(8, experts))),
                        shared_experts=draw(st.integers(0, 2)), expert_ffn_hidden=draw(st.integers(1, 4)) * 512,
                        dense_layers=draw(st.integers(0, min(3, d["layers"]))))
        if draw(st.booleans()):
            d["moe"]["routing_groups"] = 8
            d["moe"]["routing_group_limit"] = draw(st.sampled_from([1, 2, 4]))
    if draw(st.booleans()):
        d["attention"] = dict(kind="mla", q_lora_rank=draw(st.sampled_from([0, 1536])), kv_lora_rank=512,
                              qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128)
        d["kv_heads"] = heads
    return ModelSpec.model_validate(d)


@st.composite
def plans(draw, ranks_choices=(1, 2, 8, 64, 512, 4096)):
    p = np.zeros(K.P_SIZE, dtype=np.int64)
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    pp = draw(st.sampled_from([1, 2, 4, 8, 16]))
    dp = draw(st.sampled_from([1, 2, 4, 8, 32, 128]))
    cp = draw(st.sampled_from([1, 2, 4]))
    # ep divides dp*cp (EP carved out of data parallelism) or, folded, tp*dp*cp
    ep = draw(st.sampled_from([e for e in (1, 2, 4, 8, 16) if (tp * dp * cp) % e == 0]))
    mbs = draw(st.sampled_from([1, 2, 4]))
    p[K.P_TP], p[K.P_PP], p[K.P_DP], p[K.P_CP], p[K.P_EP] = tp, pp, dp, cp, ep
    p[K.P_VPP] = draw(st.sampled_from([1, 2, 3])) if pp > 1 else 1
    p[K.P_MBS] = mbs
    p[K.P_GBS] = dp * mbs * draw(st.integers(1, 64))
    p[K.P_SEQ] = draw(st.sampled_from([1, 128, 2048, 4096, 8192, 131072]))
    p[K.P_RECOMPUTE] = draw(st.integers(0, 2))
    p[K.P_ZERO] = draw(st.integers(0, 3))
    p[K.P_PREC] = draw(st.integers(0, 3))
    p[K.P_RC_Q] = draw(st.integers(0, 4))
    p[K.P_EPO] = draw(st.integers(0, 1)) if ep > 1 else 0
    return p
