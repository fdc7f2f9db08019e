"""Model architecture spec (the catalog schema in hwspecs/models/*.yaml).

Schema (required unless marked optional)::

    name, layers, hidden, heads, kv_heads, head_dim (optional, default hidden/heads),
    ffn_hidden, ffn_act (gelu | swiglu | relu2), vocab, tied_embeddings (optional),
    sliding_window / sliding_window_every (optional), attention: {kind: mla, ...} (optional),
    moe: {experts, top_k, shared_experts, expert_ffn_hidden, dense_layers} (optional), source

Extra optional fields (documented in hwspecs/models/README.md): aliases, notes,
published_params_b / published_active_params_b / published_params_source (used by tests),
moe.shared_expert_ffn_hidden, moe.moe_layer_every.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from estimator.specs.common import ID_PATTERN, Strict, check_aliases


class MLA(Strict):
    """Multi-head latent attention (DeepSeek-V2/V3)."""

    kind: Literal["mla"]
    q_lora_rank: int = Field(ge=0)  # 0 = no query compression
    kv_lora_rank: int = Field(ge=1)
    qk_rope_head_dim: int = Field(ge=0)
    qk_nope_head_dim: int = Field(ge=1)
    v_head_dim: int = Field(ge=1)


class MoE(Strict):
    experts: int = Field(ge=1)
    top_k: int = Field(ge=1)
    shared_experts: int = Field(ge=0)
    expert_ffn_hidden: int = Field(ge=1)
    dense_layers: int = Field(ge=0)
    #: width of each shared expert (default: expert_ffn_hidden)
    shared_expert_ffn_hidden: Optional[int] = Field(default=None, ge=1)
    #: among the layers after `dense_layers`, one in this many is MoE (the others dense)
    moe_layer_every: int = Field(default=1, ge=1)
    #: node-limited routing (DeepSeek-V3 n_group / topk_group): experts fall in this many
    #: contiguous groups and a token's top-k come from at most `routing_group_limit` of them
    routing_groups: Optional[int] = Field(default=None, ge=1)
    routing_group_limit: Optional[int] = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _topk(self):
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) exceeds experts ({self.experts})")
        if (self.routing_groups is None) != (self.routing_group_limit is None):
            raise ValueError("routing_groups and routing_group_limit go together")
        if self.routing_groups is not None:
            if self.experts % self.routing_groups:
                raise ValueError(f"routing_groups ({self.routing_groups}) must divide experts ({self.experts})")
            if self.routing_group_limit > self.routing_groups:
                raise ValueError("routing_group_limit exceeds routing_groups")
        return self


class ModelSpec(Strict):
    name: str = Field(pattern=ID_PATTERN)
    aliases: list[str] = Field(default_factory=list)
    layers: int = Field(ge=1)
    hidden: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: Optional[int] = Field(default=None, ge=1)
    ffn_hidden: int = Field(ge=1)
    ffn_act: Literal["gelu", "swiglu", "relu2"]
    vocab: int = Field(ge=1)
    tied_embeddings: bool = False
    #: tokens of context seen by sliding-window layers
    sliding_window: Optional[int] = Field(default=None, ge=1)
    #: one layer in every N uses full attention; the others use the sliding window
    sliding_window_every: Optional[int] = Field(default=None, ge=1)
    attention: Optional[MLA] = None
    moe: Optional[MoE] = None
    source: str
    notes: Optional[str] = None
    published_params_b: Optional[float] = Field(default=None, gt=0)
    published_active_params_b: Optional[float] = Field(default=None, gt=0)
    published_params_source: Optional[str] = None

    @field_validator("aliases")
    @classmethod
    def _alias_format(cls, v: list[str]):
        return check_aliases(v)

    @model_validator(mode="after")
    def _shape_rules(self):
        if self.heads % self.kv_heads != 0:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.head_dim is None and self.attention is None and self.hidden % self.heads != 0:
            raise ValueError("hidden must be divisible by heads when head_dim is not given")
        if self.moe is not None and self.moe.dense_layers > self.layers:
            raise ValueError(
                f"moe.dense_layers ({self.moe.dense_layers}) exceeds layers ({self.layers})"
            )
        if self.sliding_window_every is not None and self.sliding_window is None:
            raise ValueError("sliding_window_every needs sliding_window")
        return self

    @property
    def head_dim_eff(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden // self.heads
