"""Model shapes from Hugging Face ``config.json`` files.

:func:`model_from_hf_config` maps the fields of the architectures people train and serve
(Llama, Mistral, Qwen2/2.5/3, Qwen2-MoE/Qwen3-MoE, Mixtral, DeepSeek-V2/V3 and Kimi K2,
GLM-4 / GLM-4.5 / ChatGLM, GPT-OSS, Llama 4) onto :class:`estimator.specs.ModelSpec`.
Anything the schema cannot express (biases, QK-norm, group-limited routing, multi-token
prediction layers, vision encoders) is named in the spec's ``notes``. An unknown
architecture or a missing field is a :class:`SpecError` naming the file and the field.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Optional

from pydantic import ValidationError

from estimator.errors import SpecError
from estimator.importers._io import read_text_file
from estimator.importers.layout import MAX_LAYERS, moe_layout, window_layout
from estimator.specs import ModelSpec
from estimator.yamlio import format_validation_error

#: a config.json is a few KB; some carry long per-layer lists, none comes near this
MAX_CONFIG_BYTES = 4_000_000

_MISSING = object()


# ------------------------------------------------------------------------- reading
def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key '{k}'")
        out[k] = v
    return out


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json_mapping(text: str, where: str) -> dict:
    """A JSON object from text; SpecError naming ``where`` for anything else."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise SpecError(where, None, f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except (ValueError, RecursionError) as e:
        raise SpecError(where, None, f"malformed JSON: {e}") from None
    if not isinstance(data, dict):
        raise SpecError(where, None, f"expected a JSON object at top level, got {type(data).__name__}")
    return data


def config_path(path: str | os.PathLike) -> Path:
    """The config.json a path names: the file itself, or config.json inside a folder."""
    p = Path(path)
    if p.is_dir():
        inner = p / "config.json"
        if not inner.exists():
            raise SpecError(str(p), None, "folder has no config.json (expected a Hugging Face model folder)")
        return inner
    return p


def is_hf_config_path(key: str) -> bool:
    """Whether a --model value names a Hugging Face config: a .json path, or a folder."""
    p = Path(key)
    return key.lower().endswith(".json") or p.is_dir()


def load_hf_config(path: str | os.PathLike) -> dict:
    p = config_path(path)
    return parse_json_mapping(read_text_file(p, MAX_CONFIG_BYTES, "JSON file"), str(p))


# ------------------------------------------------------------------------- field access
class _Cfg:
    """Typed access to one config mapping; every error names the file and the field."""

    def __init__(self, data: dict, where: str, prefix: str = ""):
        self.data, self.where, self.prefix = data, where, prefix
        self.used: dict[str, str] = {}      # schema field -> config field (for error messages)

    def err(self, key: str, msg: str) -> SpecError:
        return SpecError(self.where, self.prefix + key, msg)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        v = self.data.get(key)
        return default if v is None else v

    def int(self, key: str, default: Any = _MISSING, *, minimum: int = 1, why: str = "",
            maximum: int = 10 ** 12) -> Any:
        v = self.data.get(key)
        if v is None:
            if default is _MISSING:
                raise self.err(key, "required field missing" + (f" ({why})" if why else ""))
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.err(key, f"must be an integer (got {v!r})")
        if v < minimum:
            raise self.err(key, f"must be >= {minimum} (got {v})")
        if v > maximum:
            raise self.err(key, f"must be <= {maximum} (got {v})")
        return v

    def bool(self, key: str, default: bool) -> bool:
        v = self.data.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.err(key, f"must be true or false (got {v!r})")
        return v

    def int_list(self, key: str, n: Optional[int] = None) -> Optional[list[int]]:
        v = self.data.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in v):
            raise self.err(key, f"must be a list of integers (got {v!r})"[:200])
        return v

    def str_list(self, key: str, n: int) -> Optional[list[str]]:
        v = self.data.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or any(not isinstance(x, str) for x in v):
            raise self.err(key, "must be a list of strings")
        if len(v) != n:
            raise self.err(key, f"has {len(v)} entries for {n} layers")
        return v


# ------------------------------------------------------------------------- shared pieces
_SWIGLU_ACTS = {"silu", "swish"}


def _gated_act(c: _Cfg, notes: list[str], key: str = "hidden_act", default: str = "silu") -> str:
    act = c.raw(key, default)
    if not isinstance(act, str):
        raise c.err(key, f"must be a string (got {act!r})")
    if act not in _SWIGLU_ACTS:
        notes.append(f"gated MLP with {act} counted as SwiGLU (the same three matrices)")
    return "swiglu"


def _attention(c: _Cfg, out: dict, heads_key="num_attention_heads", kv_key="num_key_value_heads") -> None:
    out["layers"] = c.int("num_hidden_layers", maximum=MAX_LAYERS)
    out["hidden"] = c.int("hidden_size")
    out["heads"] = c.int(heads_key)
    out["kv_heads"] = c.int(kv_key, out["heads"])
    c.used.update(layers="num_hidden_layers", hidden="hidden_size", heads=heads_key, kv_heads=kv_key)
    hd = c.int("head_dim", None)
    if hd is not None and (out["hidden"] % out["heads"] or hd != out["hidden"] // out["heads"]):
        out["head_dim"] = hd
        c.used["head_dim"] = "head_dim"


def _vocab_tied(c: _Cfg, out: dict, vocab_key="vocab_size") -> None:
    out["vocab"] = c.int(vocab_key)
    out["tied_embeddings"] = c.bool("tie_word_embeddings", False)
    c.used.update(vocab=vocab_key, tied_embeddings="tie_word_embeddings")


def _window(c: _Cfg, out: dict, notes: list[str], rule: str) -> None:
    """Sliding-window layers. ``rule``: 'layer_types' (explicit per-layer list, the newer
    transformers form), 'mistral' (every layer, when sliding_window is set), 'qwen'
    (only with use_sliding_window: layers from max_window_layers on), 'none'."""
    n = out["layers"]
    types = c.str_list("layer_types", n)
    if types is not None:
        known = {"full_attention", "sliding_attention", "chunked_attention"}
        bad = sorted(set(types) - known)
        if bad:
            raise c.err("layer_types", f"unknown layer type '{bad[0]}' (known: {', '.join(sorted(known))})")
        flags = [t != "full_attention" for t in types]
    elif rule == "mistral":
        flags = [c.has("sliding_window")] * n
    elif rule == "qwen":
        if c.bool("use_sliding_window", False):
            start = c.int("max_window_layers", n, minimum=0)
            flags = [i >= start for i in range(n)]
        else:
            flags = [False] * n
    else:
        flags = [False] * n
    if not any(flags):
        return
    chunked = types is not None and "chunked_attention" in types
    key = "attention_chunk_size" if chunked else "sliding_window"
    out["sliding_window"] = c.int(key, why="some layers use local attention")
    c.used["sliding_window"] = key
    _, every, note = window_layout(flags)
    if every is not None:
        out["sliding_window_every"] = every
    if note:
        notes.append(note)


def _moe(out: dict, flags: list[bool], experts: int, top_k: int, expert_ffn: int, shared: int = 0,
         shared_ffn: Optional[int] = None, notes: list[str] | None = None) -> None:
    lay = moe_layout(flags)
    if lay is None:
        if notes is not None:
            notes.append("the config names experts but no layer is MoE: imported as a dense model")
        return
    dense, every, note = lay
    moe = {"experts": experts, "top_k": top_k, "shared_experts": shared,
           "expert_ffn_hidden": expert_ffn, "dense_layers": dense}
    if every != 1:
        moe["moe_layer_every"] = every
    if shared and shared_ffn and shared_ffn != expert_ffn:
        moe["shared_expert_ffn_hidden"] = shared_ffn
    out["moe"] = moe
    if note and notes is not None:
        notes.append(note)


def _not_modelled(c: _Cfg, notes: list[str], checks: dict[str, Callable[[Any], Optional[str]]]) -> None:
    for key, fn in checks.items():
        if key in c.data and c.data[key] is not None:
            msg = fn(c.data[key])
            if msg:
                notes.append(msg)


_BIAS = {"attention_bias": lambda v: "attention projection biases not modelled" if v is True else None,
         "qkv_bias": lambda v: "QKV biases not modelled" if v is True else None}


# ------------------------------------------------------------------------- architectures
def _llama_like(c: _Cfg, notes: list[str], window_rule: str) -> dict:
    out: dict = {}
    _attention(c, out)
    out["ffn_hidden"] = c.int("intermediate_size")
    c.used["ffn_hidden"] = "intermediate_size"
    out["ffn_act"] = _gated_act(c, notes)
    _vocab_tied(c, out)
    _window(c, out, notes, window_rule)
    _not_modelled(c, notes, {**_BIAS, "partial_rotary_factor":
                             lambda v: f"partial RoPE ({v}) not modelled" if v != 1 else None})
    return out


def _llama(c, notes):
    return _llama_like(c, notes, "none")


def _mistral(c, notes):
    return _llama_like(c, notes, "mistral")


def _qwen(c, notes):
    notes.append("QKV biases not modelled")
    return _llama_like(c, notes, "qwen")


def _qwen3(c, notes):
    notes.append("QK-norm not modelled")
    return _llama_like(c, notes, "qwen")


def _qwen2_moe(c, notes):
    notes.append("QKV biases not modelled")
    return _qwen_moe(c, notes)


def _qwen3_moe(c, notes):
    notes.append("QK-norm not modelled")
    return _qwen_moe(c, notes)


def _qwen_moe(c: _Cfg, notes: list[str]) -> dict:
    """Qwen2-MoE / Qwen3-MoE: a layer is MoE unless listed in mlp_only_layers, and only when
    (index + 1) is a multiple of decoder_sparse_step (transformers' rule)."""
    out = _llama_like(c, notes, "qwen")
    n = out["layers"]
    experts = c.int("num_experts", why="routed experts per MoE layer")
    step = c.int("decoder_sparse_step", 1)
    only_mlp = set(c.int_list("mlp_only_layers") or [])
    bad = sorted(i for i in only_mlp if not 0 <= i < n)
    if bad:
        raise c.err("mlp_only_layers", f"layer {bad[0]} is outside 0..{n - 1}")
    flags = [(i not in only_mlp) and (i + 1) % step == 0 for i in range(n)]
    shared_w = c.int("shared_expert_intermediate_size", 0, minimum=0)
    _moe(out, flags, experts, c.int("num_experts_per_tok"), c.int("moe_intermediate_size"),
         shared=1 if shared_w else 0, shared_ffn=shared_w or None, notes=notes)
    if shared_w:
        notes.append("shared-expert gate (hidden x 1) not modelled")
    return out


def _mixtral(c: _Cfg, notes: list[str]) -> dict:
    out = _llama_like(c, notes, "mistral")
    n = out["layers"]
    _moe(out, [True] * n, c.int("num_local_experts"), c.int("num_experts_per_tok"),
         out["ffn_hidden"], notes=notes)
    return out


def _deepseek(c: _Cfg, notes: list[str]) -> dict:
    """DeepSeek-V2/V3 (and Kimi K2): MLA, routed + shared experts, first_k_dense_replace
    dense layers, then MoE on layers whose index is a multiple of moe_layer_freq."""
    out: dict = {}
    _attention(c, out)
    out["kv_heads"] = out["heads"]            # MLA: the schema counts every head
    out.pop("head_dim", None)
    out["attention"] = {
        "kind": "mla",
        "q_lora_rank": c.int("q_lora_rank", 0, minimum=0),
        "kv_lora_rank": c.int("kv_lora_rank"),
        "qk_rope_head_dim": c.int("qk_rope_head_dim", minimum=0),
        "qk_nope_head_dim": c.int("qk_nope_head_dim"),
        "v_head_dim": c.int("v_head_dim"),
    }
    out["ffn_hidden"] = c.int("intermediate_size")
    c.used["ffn_hidden"] = "intermediate_size"
    out["ffn_act"] = _gated_act(c, notes)
    _vocab_tied(c, out)
    n = out["layers"]
    if c.has("n_routed_experts"):
        first = c.int("first_k_dense_replace", 0, minimum=0)
        freq = c.int("moe_layer_freq", 1)
        flags = [i >= first and i % freq == 0 for i in range(n)]
        _moe(out, flags, c.int("n_routed_experts"), c.int("num_experts_per_tok"),
             c.int("moe_intermediate_size"), shared=c.int("n_shared_experts", 0, minimum=0), notes=notes)
        c.used["moe.dense_layers"] = "first_k_dense_replace"
    n_group, topk_group = c.raw("n_group"), c.raw("topk_group")
    if (isinstance(n_group, int) and n_group > 1 and isinstance(topk_group, int)
            and 0 < topk_group < n_group and "moe" in out and out["moe"]["experts"] % n_group == 0):
        # node-limited routing (DeepSeek-V3 sec. 2.1.2): a token's experts come from topk_group
        # of n_group contiguous expert groups
        out["moe"]["routing_groups"] = n_group
        out["moe"]["routing_group_limit"] = topk_group
        c.used["moe.routing_groups"] = "n_group"
        c.used["moe.routing_group_limit"] = "topk_group"
    _not_modelled(c, notes, {"num_nextn_predict_layers": lambda v: (
        f"{v} multi-token-prediction layer(s) in the checkpoint not modelled" if v else None)})
    return out


def _glm4_moe(c: _Cfg, notes: list[str]) -> dict:
    """GLM-4.5 / GLM-4.6 / GLM-4.7: GQA, first_k_dense_replace dense layers then MoE."""
    out = _llama_like(c, notes, "none")
    n = out["layers"]
    first = c.int("first_k_dense_replace", 0, minimum=0)
    _moe(out, [i >= first for i in range(n)], c.int("n_routed_experts"), c.int("num_experts_per_tok"),
         c.int("moe_intermediate_size"), shared=c.int("n_shared_experts", 0, minimum=0), notes=notes)
    c.used["moe.dense_layers"] = "first_k_dense_replace"
    _not_modelled(c, notes, {
        "use_qk_norm": lambda v: "QK-norm not modelled" if v else None,
        "num_nextn_predict_layers": lambda v: (
            f"{v} multi-token-prediction layer(s) in the checkpoint not modelled" if v else None)})
    return out


def _gpt_oss(c: _Cfg, notes: list[str]) -> dict:
    out: dict = {}
    _attention(c, out)
    width = c.int("intermediate_size")
    out["ffn_hidden"] = width
    out["ffn_act"] = _gated_act(c, notes)
    _vocab_tied(c, out)
    n = out["layers"]
    if not c.has("layer_types"):   # transformers' default: even layers sliding, odd full
        c.data = {**c.data, "layer_types": ["sliding_attention" if (i + 1) % 2 else "full_attention"
                                            for i in range(n)]}
    _window(c, out, notes, "layer_types")
    experts = c.int("num_local_experts")
    top = c.int("num_experts_per_tok", None) or c.int("experts_per_token")
    _moe(out, [True] * n, experts, top, width, notes=notes)
    notes.append("attention sinks and projection biases not modelled")
    q = c.raw("quantization_config")
    if isinstance(q, dict) and q.get("quant_method"):
        notes.append(f"checkpoint weights are {q['quant_method']}; the estimate's precision is chosen separately")
    return out


def _llama4(c: _Cfg, notes: list[str]) -> dict:
    """Llama 4 (text part): MoE on every interleave_moe_layer_step-th layer with one shared
    expert; chunked local attention on the RoPE layers, global attention on the NoPE ones."""
    out: dict = {}
    _attention(c, out)
    out["ffn_hidden"] = c.int("intermediate_size_mlp")
    c.used["ffn_hidden"] = "intermediate_size_mlp"
    out["ffn_act"] = _gated_act(c, notes)
    _vocab_tied(c, out)
    n = out["layers"]
    if not c.has("layer_types") and c.has("attention_chunk_size"):
        nope = c.int_list("no_rope_layers")
        if not nope:   # transformers' default when absent or empty: every 4th layer is NoPE
            every = c.int("no_rope_layer_interval", 4)
            nope = [int((i + 1) % every != 0) for i in range(n)]
        if len(nope) != n:
            raise c.err("no_rope_layers", f"has {len(nope)} entries for {n} layers")
        c.data = {**c.data, "layer_types": ["chunked_attention" if r else "full_attention" for r in nope]}
    _window(c, out, notes, "layer_types")
    if "sliding_window" in out:
        notes.append(f"chunked attention ({out['sliding_window']}-token chunks) counted as a sliding window "
                     "of that size (an upper bound on the context a local layer sees)")
    width = c.int("intermediate_size")
    moe_layers = c.int_list("moe_layers")
    if moe_layers is None:
        step = c.int("interleave_moe_layer_step", 1)
        moe_layers = list(range(step - 1, n, step))
    chosen = set(moe_layers)
    if any(not 0 <= i < n for i in chosen):
        raise c.err("moe_layers", f"names a layer outside 0..{n - 1}")
    flags = [i in chosen for i in range(n)]
    _moe(out, flags, c.int("num_local_experts"), c.int("num_experts_per_tok"), width,
         shared=1, notes=notes)
    return out


def _chatglm(c: _Cfg, notes: list[str]) -> dict:
    """ChatGLM2/3 and GLM-4-9B (THUDM remote-code configs: num_layers, multi_query_group_num,
    kv_channels, ffn_hidden_size, padded_vocab_size)."""
    out: dict = {}
    out["layers"] = c.int("num_layers", maximum=MAX_LAYERS)
    out["hidden"] = c.int("hidden_size")
    out["heads"] = c.int("num_attention_heads")
    c.used.update(layers="num_layers", hidden="hidden_size", heads="num_attention_heads")
    if c.bool("multi_query_attention", False):
        out["kv_heads"] = c.int("multi_query_group_num")
        c.used["kv_heads"] = "multi_query_group_num"
    else:
        out["kv_heads"] = out["heads"]
    hd = c.int("kv_channels", None)
    if hd is not None and (out["hidden"] % out["heads"] or hd != out["hidden"] // out["heads"]):
        out["head_dim"] = hd
        c.used["head_dim"] = "kv_channels"
    out["ffn_hidden"] = c.int("ffn_hidden_size")
    c.used["ffn_hidden"] = "ffn_hidden_size"
    out["ffn_act"] = "swiglu"
    _vocab_tied(c, out, vocab_key="padded_vocab_size")
    if c.bool("add_qkv_bias", False):
        notes.append("QKV biases not modelled")
    return out


ARCHITECTURES: dict[str, Callable[[_Cfg, list[str]], dict]] = {
    "LlamaForCausalLM": _llama,
    "MistralForCausalLM": _mistral,
    "Qwen2ForCausalLM": _qwen,
    "Qwen3ForCausalLM": _qwen3,
    "Qwen2MoeForCausalLM": _qwen2_moe,
    "Qwen3MoeForCausalLM": _qwen3_moe,
    "MixtralForCausalLM": _mixtral,
    "DeepseekV2ForCausalLM": _deepseek,
    "DeepseekV3ForCausalLM": _deepseek,
    "Glm4MoeForCausalLM": _glm4_moe,
    "GlmForCausalLM": _llama,
    "Glm4ForCausalLM": _llama,
    "GptOssForCausalLM": _gpt_oss,
    "Llama4ForConditionalGeneration": _llama4,
    "Llama4ForCausalLM": _llama4,
    "ChatGLMModel": _chatglm,
    "ChatGLMForConditionalGeneration": _chatglm,
}

#: model_type -> architecture, for configs without an ``architectures`` list
MODEL_TYPES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
               "qwen3": "Qwen3ForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
               "qwen3_moe": "Qwen3MoeForCausalLM", "mixtral": "MixtralForCausalLM",
               "deepseek_v2": "DeepseekV2ForCausalLM", "deepseek_v3": "DeepseekV3ForCausalLM",
               "kimi_k2": "DeepseekV3ForCausalLM", "glm4_moe": "Glm4MoeForCausalLM",
               "glm": "GlmForCausalLM", "glm4": "Glm4ForCausalLM", "gpt_oss": "GptOssForCausalLM",
               "llama4": "Llama4ForConditionalGeneration", "llama4_text": "Llama4ForCausalLM",
               "chatglm": "ChatGLMModel"}

def _architecture(data: dict, where: str) -> str:
    archs = data.get("architectures")
    if archs is not None:
        if not isinstance(archs, list) or not archs or not all(isinstance(a, str) for a in archs):
            raise SpecError(where, "architectures", "must be a non-empty list of class names")
        for a in archs:
            if a in ARCHITECTURES:
                return a
        raise SpecError(where, "architectures",
                        f"unsupported architecture '{archs[0]}' (supported: {', '.join(sorted(ARCHITECTURES))})")
    mt = data.get("model_type")
    if isinstance(mt, str) and mt in MODEL_TYPES:
        return MODEL_TYPES[mt]
    if mt is not None:
        raise SpecError(where, "model_type", f"unsupported model_type '{mt}' and no architectures list "
                                             f"(supported model types: {', '.join(sorted(MODEL_TYPES))})")
    raise SpecError(where, "architectures", "required field missing (cannot tell the model family)")


def _derived_name(data: dict, path: Optional[Path]) -> str:
    if path is not None:
        base = path.resolve().parent.name if path.name == "config.json" else path.stem
    else:
        base = str(data.get("_name_or_path") or "").rstrip("/").split("/")[-1]
    s = re.sub(r"[^a-z0-9.\-]+", "-", base.lower())
    s = re.sub(r"-{2,}", "-", s).lstrip(".-").rstrip("-")
    return s or "hf-model"


def model_from_hf_config(path_or_dict: str | os.PathLike | dict, name: Optional[str] = None) -> ModelSpec:
    """A :class:`ModelSpec` from a Hugging Face ``config.json`` (a file, a model folder that
    holds one, or the parsed mapping).

    ``name`` defaults to the model folder's name (``.../Qwen3-32B/config.json`` ->
    ``qwen3-32b``). Raises :class:`SpecError` naming the file and field when the
    architecture is not supported or a needed field is missing or malformed.

    >>> m = model_from_hf_config({"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32,
    ...     "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
    ...     "intermediate_size": 14336, "vocab_size": 128256}, name="my-llama")
    >>> (m.layers, m.kv_heads, m.ffn_act)
    (32, 8, 'swiglu')
    """
    if isinstance(path_or_dict, dict):
        data, where, path = path_or_dict, "config (mapping)", None
    else:
        path = config_path(path_or_dict)
        data = load_hf_config(path)
        where = str(path)
    arch = _architecture(data, where)
    notes: list[str] = []
    prefix = ""
    body = data
    if isinstance(data.get("text_config"), dict) and arch.startswith("Llama4ForConditional"):
        body, prefix = data["text_config"], "text_config."
        notes.append("text model only: the vision encoder is not modelled")
    c = _Cfg(dict(body), where, prefix)
    fields = ARCHITECTURES[arch](c, notes)
    spec = {"name": name if name is not None else _derived_name(data, path), **fields,
            "source": f"Hugging Face config.json ({arch})" + (f": {where}" if path is not None else "")}
    if notes:
        spec["notes"] = "; ".join(dict.fromkeys(notes))
    try:
        return ModelSpec.model_validate(spec)
    except ValidationError as e:
        loc, msg = format_validation_error(e)
        if not loc:  # a rule across fields: name the most specific field the message mentions
            named = [k for k in c.used if re.search(rf"(?<![\w.]){re.escape(k)}\b", msg)]
            loc = max(named, key=len) if named else ""
        top = loc.split(".")[0] if loc else ""
        hf = c.used.get(loc) or c.used.get(top)
        field = prefix + hf if hf else (f"{loc} (derived)" if loc else None)
        raise SpecError(where, field, msg) from None
