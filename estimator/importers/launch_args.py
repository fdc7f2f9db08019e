"""Plans (and model shapes) from Megatron-LM / MindSpeed-LLM launch arguments.

:func:`parse_launch_args` takes a launch script, a command line, or an argument list and
returns :class:`LaunchArgs`: the parallel plan, the workload (global batch, sequence length),
the precision, the model when the shape flags say enough, and every flag sorted into what
was applied, what the estimator assumes anyway, what does not change a throughput estimate,
what it recognises but cannot model, and what it does not know. Nothing is dropped silently.

Knobs a Megatron run takes from defaults when the flag is absent (tp, pp, cp, ep = 1, no
interleaving, no recompute, no distributed optimizer) are filled with those defaults, and
the origin of every knob is recorded: the plan is the one the script would run.
"""
from __future__ import annotations

import ast
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import ValidationError

from estimator.errors import InputError
from estimator.importers._io import read_text_file
from estimator.importers.layout import MAX_LAYERS, moe_layout
from estimator.importers.shell import UNRESOLVED, evaluate_argv, evaluate_script
from estimator.specs import ModelSpec
from estimator.yamlio import format_validation_error

#: launch scripts are a few KB
MAX_SCRIPT_BYTES = 1_000_000

# ------------------------------------------------------------------------- flag table
# role: plan | workload | precision | model | launcher | assumed | ignored | not_modelled
# nargs: 0 (switch), 1 (one value), '*' (every following non-flag word)
_FLAGS: dict[str, tuple[str, Any, str]] = {}


def _add(role: str, nargs, names: str, why: str = "") -> None:
    for n in names.split():
        _FLAGS[n] = (role, nargs, why)


_add("plan", 1, "tensor-model-parallel-size pipeline-model-parallel-size context-parallel-size "
                "expert-model-parallel-size num-layers-per-virtual-pipeline-stage "
                "num-virtual-stages-per-pipeline-rank virtual-pipeline-model-parallel-size micro-batch-size "
                "recompute-granularity recompute-method recompute-num-layers data-parallel-sharding-strategy")
_add("plan", 0, "recompute-activations checkpoint-activations use-distributed-optimizer use-torch-fsdp2 "
                "use-custom-fsdp use-megatron-fsdp account-for-embedding-in-pipeline-split "
                "account-for-loss-in-pipeline-split")
_add("plan", 1, "expert-tensor-parallel-size moe-token-dispatcher-type moe-flex-dispatcher-backend")
_add("plan", 0, "moe-enable-deepep")
_add("workload", 1, "global-batch-size seq-length encoder-seq-length")
_add("precision", 0, "bf16 fp16")
_add("precision", 1, "fp8-format fp4-format")
_add("model", 1, "num-layers hidden-size ffn-hidden-size num-attention-heads num-query-groups kv-channels "
                 "vocab-size padded-vocab-size make-vocab-size-divisible-by tokenizer-type num-experts "
                 "moe-router-topk moe-ffn-hidden-size moe-intermediate-size moe-shared-expert-intermediate-size "
                 "n-shared-experts first-k-dense-replace moe-layer-freq q-lora-rank kv-lora-rank qk-head-dim "
                 "qk-pos-emb-head-dim qk-rope-head-dim qk-nope-head-dim v-head-dim noop-layers "
                 "moe-router-num-groups moe-router-group-topk n-group topk-group")
_add("model", 0, "group-query-attention swiglu squared-relu untie-embeddings-and-output-weights "
                 "multi-latent-attention multi-head-latent-attention")
_add("launcher", 1, "nproc-per-node nnodes")
_add("launcher", "*", "node-rank master-addr master-port rdzv-backend rdzv-endpoint rdzv-id rdzv-conf "
                      "max-restarts monitor-interval start-method role log-dir redirects tee local-addr "
                      "local-ranks-filter", "launcher plumbing")
_add("launcher", 0, "standalone use-env no-python run-path", "launcher plumbing")
_add("assumed", "*", "sequence-parallel use-flash-attn use-fused-rmsnorm use-fused-swiglu use-fused-rotary-pos-emb "
                     "attention-backend overlap-grad-reduce overlap-param-gather align-grad-reduce "
                     "align-param-gather moe-grouped-gemm gradient-accumulation-fusion "
                     "gemm-gradient-accumulation-fusion cross-entropy-loss-fusion cross-entropy-fusion-impl "
                     "use-mcore-models transformer-impl async-tensor-model-parallel-allreduce "
                     "masked-softmax-fusion bias-swiglu-fusion",
     "the estimator assumes fused kernels, FlashAttention, sequence parallelism with TP and overlapped "
     "data-parallel communication")
_add("ignored", "*",
     # optimiser, schedule, initialisation, regularisation
     "lr min-lr lr-decay-style lr-warmup-fraction lr-warmup-iters lr-warmup-samples lr-warmup-init "
     "lr-decay-iters lr-decay-samples decoupled-lr decoupled-min-lr weight-decay weight-decay-incr-style "
     "start-weight-decay end-weight-decay clip-grad adam-beta1 adam-beta2 adam-eps sgd-momentum optimizer "
     "initial-loss-scale min-loss-scale loss-scale loss-scale-window hysteresis train-iters train-samples "
     "exit-interval exit-duration-in-mins exit-on-missing-checkpoint exit-signal-handler seed init-method-std "
     "init-method-xavier-uniform attention-dropout hidden-dropout no-load-optim no-load-rng no-save-optim "
     "no-save-rng finetune override-opt-param-scheduler use-checkpoint-opt-param-scheduler "
     "accumulate-allreduce-grads-in-fp32 grad-reduce-in-bf16 "
     # data, tokenizer, checkpoints, logging, profiling
     "data-path train-data-path valid-data-path test-data-path split data-cache-path mock-data tokenizer-model "
     "tokenizer-name-or-path tokenizer-not-use-fast vocab-file merge-file num-workers dataloader-type "
     "no-mmap-bin-files no-create-attention-mask-in-dataloader reset-position-ids reset-attention-mask "
     "eod-mask-loss tiktoken-pattern save load save-interval eval-interval eval-iters log-interval "
     "log-throughput log-timers-to-tensorboard log-validation-ppl-to-tensorboard log-memory-to-tensorboard "
     "log-num-zeros-in-grad log-params-norm tensorboard-dir tensorboard-log-interval tensorboard-queue-size "
     "wandb-project wandb-exp-name wandb-save-dir timing-log-level timing-log-option profile "
     "profile-step-start profile-step-end profile-ranks profile-level profile-save-path ckpt-format async-save "
     "use-dist-ckpt auto-detect-ckpt-format no-shared-storage distributed-timeout-minutes distributed-backend "
     "use-legacy-models spec manual-gc manual-gc-interval empty-unused-memory-level "
     "check-for-nan-in-loss-and-grad no-check-for-nan-in-loss-and-grad calculate-per-token-loss "
     "ckpt-fully-parallel-load ckpt-fully-parallel-save dist-ckpt-strictness use-cpu-initialization "
     "no-initialization "
     # numerics and small terms outside the shape schema
     "max-position-embeddings position-embedding-type use-rotary-position-embeddings rotary-base rotary-percent "
     "rotary-interleaved rotary-seq-len-interpolation-factor rope-scaling-type rope-scaling-factor "
     "rope-scaling-beta-fast rope-scaling-beta-slow rope-scaling-mscale rope-scaling-mscale-all-dim "
     "rope-scaling-original-max-position-embeddings use-rope-scaling normalization norm-epsilon "
     "layernorm-epsilon apply-layernorm-1p disable-bias-linear add-qkv-bias add-bias-linear qk-layernorm "
     "attention-softmax-in-fp32 no-masked-softmax-fusion no-bias-gelu-fusion no-bias-dropout-fusion "
     "no-bias-swiglu-fusion no-rope-fusion apply-query-key-layer-scaling embedding-weights-in-fp32 "
     "rotary-position-embeddings-in-fp32 fp32-residual-connection openai-gelu "
     "no-gradient-accumulation-fusion no-async-tensor-model-parallel-allreduce "
     "moe-router-load-balancing-type moe-aux-loss-coeff moe-z-loss-coeff moe-router-score-function "
     "moe-router-enable-expert-bias moe-router-bias-update-rate moe-router-topk-scaling-factor "
     "routed-scaling-factor norm-topk-prob seq-aux moe-input-jitter-eps moe-router-pre-softmax "
     "router-gating-in-fp32 moe-router-dtype mtp-loss-scaling-factor mtp-mem-efficient-logits "
     "fp8-amax-history-len fp8-amax-compute-algo fp8-margin fp8-interval fp8-recipe",
     "no effect on a throughput estimate")
_add("not_modelled", "*",
     "moe-tp-extend-ep context-parallel-algo cp-comm-type "
     "hierarchical-context-parallel-sizes swap-attention swap-optimizer swap-optimizer-times "
     "recompute-activation-function recompute-activation-function-num-layers recompute-norm "
     "recompute-norm-num-layers recompute-in-advance moe-fb-overlap schedules-method mtp-num-layers "
     "window-size num-layers-in-first-pipeline-stage num-layers-in-last-pipeline-stage "
     "decoder-first-pipeline-num-layers decoder-last-pipeline-num-layers pipeline-model-parallel-layout "
     "moe-expert-capacity-factor moe-pad-expert-input-to-capacity "
     "cpu-offloading cpu-offloading-num-layers "
     "reuse-fp32-param use-ascend-coc coc-fused-kernel overlap-moe-expert-parallel-comm delay-wgrad-compute "
     "tp-comm-overlap moe-permutation-async-comm moe-alltoall-overlap-comm use-fused-ring-attention-update "
     "fp8-param-gather rampup-batch-size moe-layer-recompute moe-shared-expert-overlap "
     "moe-zero-memory moe-zero-memory-num-layers",
     "recognised, not represented in the estimate")

#: base vocabularies of tokenizers whose size is fixed by their type (Megatron pads them)
_TOKENIZER_VOCAB = {"Llama2Tokenizer": (32000, "Llama 2 tokenizer, 32,000 tokens"),
                    "GPT2BPETokenizer": (50257, "GPT-2 BPE tokenizer, 50,257 tokens")}

_ZERO_STRATEGIES = {"no_shard": 0, "optim": 1, "optim_grads": 2, "optim_grads_params": 3}

_NUM = re.compile(r"^-?\d+(\.\d*)?([eE][-+]?\d+)?$|^-?\.\d+$")


def _norm(flag: str) -> str:
    return flag[2:].replace("_", "-")


def _is_flag(tok: str) -> bool:
    return tok.startswith("--") and len(tok) > 2


def _is_value(tok: str) -> bool:
    return not tok.startswith("-") or bool(_NUM.match(tok))


# ------------------------------------------------------------------------- result
@dataclass
class Flag:
    flag: str                   # as written, e.g. --tensor-model-parallel-size
    value: Any                  # None (switch), str, or list[str]
    line: int

    def text(self) -> str:
        if self.value is None:
            return self.flag
        v = self.value if isinstance(self.value, str) else " ".join(self.value)
        v = v.replace(UNRESOLVED, "")
        return f"{self.flag} {v}".strip()


@dataclass
class LaunchArgs:
    """What a Megatron-LM / MindSpeed-LLM launch says about a training job.

    ``plan``/``gbs``/``seq_len``/``precision`` hold what the flags give directly;
    :meth:`knobs` resolves the plan against a model (interleaving and partial recompute are
    counted in layers) and fills Megatron's defaults. ``model`` is set when the shape flags
    are complete, else ``model_missing`` names the flags it lacks.
    """

    source: str
    flags: dict[str, Flag] = field(default_factory=dict)
    plan: dict = field(default_factory=dict)
    gbs: Optional[int] = None
    seq_len: Optional[int] = None
    precision: Optional[str] = None
    model: Optional[ModelSpec] = None
    model_missing: list[str] = field(default_factory=list)
    world_size: Optional[int] = None
    applied: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    not_modelled: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # -- access ----------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.flags

    def text(self, name: str) -> str:
        return self.flags[name].text()

    def _err(self, name: str, msg: str) -> InputError:
        return InputError(f"{self.source}: --{name}: {msg}")

    def _int(self, name: str, minimum: int = 1, maximum: int = 10 ** 12) -> Optional[int]:
        f = self.flags.get(name)
        if f is None:
            return None
        v = f.value
        if v is None or v == []:
            raise self._err(name, "has no value (an unset shell variable?)")
        if isinstance(v, list):
            v = v[0]
        if UNRESOLVED in v:
            raise self._err(name, f"its value comes from {v.strip(UNRESOLVED)[:40]}, which suanli does not evaluate")
        if not re.fullmatch(r"\+?\d+", v.strip()):
            raise self._err(name, f"must be {'a positive' if minimum >= 1 else 'a non-negative'} integer (got {v!r})")
        n = int(v)
        if n < minimum:
            raise self._err(name, f"must be >= {minimum} (got {n})")
        if n > maximum:
            raise self._err(name, f"must be <= {maximum} (got {n})")
        return n

    def _str(self, name: str) -> Optional[str]:
        f = self.flags.get(name)
        if f is None:
            return None
        v = f.value
        if v is None or v == []:
            raise self._err(name, "has no value (an unset shell variable?)")
        v = v if isinstance(v, str) else " ".join(v)
        if UNRESOLVED in v:
            raise self._err(name, f"its value comes from {v.strip(UNRESOLVED)[:40]}, which suanli does not evaluate")
        return v.strip()

    # -- resolution against a model --------------------------------------------------
    def knobs(self, model: ModelSpec, pp: Optional[int] = None) -> tuple[dict, dict, list[str]]:
        """(knobs, origin, notes): every plan knob Megatron fixes for this launch (tp, pp, cp,
        ep, vpp, mbs, recompute, zero), resolved for ``model``; ``origin`` says where each
        came from. ``pp`` replaces the launch's pipeline degree where layers are counted per
        stage (interleaving, block recompute). Raises InputError when a layer count does not
        divide as Megatron needs."""
        k: dict = {}
        origin: dict = {}
        notes: list[str] = []
        for knob, flag in (("tp", "tensor-model-parallel-size"), ("pp", "pipeline-model-parallel-size"),
                           ("cp", "context-parallel-size"), ("ep", "expert-model-parallel-size")):
            if knob in self.plan:
                k[knob], origin[knob] = self.plan[knob], self.text(flag)
            else:
                k[knob], origin[knob] = 1, f"Megatron default (no --{flag})"
        if "mbs" in self.plan:
            k["mbs"], origin["mbs"] = self.plan["mbs"], self.text("micro-batch-size")
        layers = self.plan.get("megatron_layers") or model.layers
        pp = pp or k["pp"]
        if "vpp_layers" in self.plan:
            per = self.plan["vpp_layers"]
            if layers % pp or (layers // pp) % per:
                raise self._err("num-layers-per-virtual-pipeline-stage",
                                f"{layers} layers over pp {pp} do not split into chunks of {per}")
            k["vpp"] = layers // pp // per
            origin["vpp"] = f"{self.text('num-layers-per-virtual-pipeline-stage')} ({layers // pp} layers per stage)"
        elif "vpp" in self.plan:
            k["vpp"], origin["vpp"] = self.plan["vpp"], self.text(self.plan["vpp_flag"])
        else:
            k["vpp"], origin["vpp"] = 1, "no interleaving (no virtual-pipeline flag)"
        rc = self.plan.get("recompute")
        if rc is None:
            k["recompute"], origin["recompute"] = "none", "no recompute flags"
        elif rc == "block":
            n = self.plan["recompute_layers"]
            per_chunk = layers // (pp * k["vpp"]) if layers >= pp * k["vpp"] else 1
            src = " ".join(self.text(f) for f in ("recompute-granularity", "recompute-method",
                                                  "recompute-num-layers") if self.has(f))
            if n == 0:
                k["recompute"] = "none"
            elif n >= per_chunk:
                k["recompute"] = "full"
            else:
                k["recompute"] = "partial"
                notes.append(f"recompute: {n} of {per_chunk} layers per pipeline chunk; suanli models partial "
                             "recompute in quarters of a stage's layers and searches 1/4, 2/4 and 3/4")
            origin["recompute"] = src
        else:
            k["recompute"], origin["recompute"] = rc, self.plan["recompute_src"]
        if model.moe is not None and "moe_dispatcher" in self.plan:
            k["moe_dispatcher"], origin["moe_dispatcher"] = self.plan["moe_dispatcher"], self.plan["moe_dispatcher_src"]
        if model.moe is not None:
            if "etp" in self.plan:
                k["etp"], origin["etp"] = self.plan["etp"], self.text("expert-tensor-parallel-size")
            else:
                k["etp"], origin["etp"] = k["tp"], "Megatron default (no --expert-tensor-parallel-size: = tp)"
        if "zero" in self.plan:
            k["zero"], origin["zero"] = self.plan["zero"], self.plan["zero_src"]
        else:
            k["zero"], origin["zero"] = 0, "no --use-distributed-optimizer (optimizer state replicated)"
        if k["tp"] > 1 and not self.has("sequence-parallel"):
            notes.append("the launch args do not enable --sequence-parallel; the estimate assumes it with tp > 1 "
                         "(less activation memory than this run would use)")
        return k, origin, notes

    def default_gbs(self, ranks: int, knobs: dict) -> Optional[int]:
        """Megatron's global batch when --global-batch-size is absent: mbs x dp."""
        if "mbs" not in knobs:
            return None
        div = knobs["tp"] * knobs["pp"] * knobs["cp"]
        if ranks % div:
            return None
        return knobs["mbs"] * (ranks // div)

    def to_dict(self) -> dict:
        return {"source": self.source, "plan": {k: v for k, v in self.plan.items()
                                                if k not in ("recompute_src", "zero_src", "vpp_flag")},
                "gbs": self.gbs, "seq_len": self.seq_len, "precision": self.precision,
                "model": None if self.model is None else self.model.name,
                "model_missing": self.model_missing, "world_size": self.world_size,
                "applied": self.applied, "assumed": self.assumed, "ignored": self.ignored,
                "not_modelled": self.not_modelled, "unknown": self.unknown, "notes": self.notes}


# ------------------------------------------------------------------------- parsing
def _collect(commands, la: LaunchArgs) -> None:
    """Sort the flags of every command that carries Megatron or launcher flags."""
    used_lines = []
    for cmd in commands:
        argv = []
        for tok in cmd.argv[1:] if len(cmd.argv) > 1 and not _is_flag(cmd.argv[0]) else cmd.argv:
            # an array element like "--fp8-format hybrid" reaches argparse as one word;
            # accept it as the flag and its value
            if _is_flag(tok) and re.search(r"\s", tok):
                argv.extend(tok.split())
            else:
                argv.append(tok)
        if not any(_is_flag(t) and _norm(t.split("=", 1)[0]) in _FLAGS for t in argv):
            continue
        used_lines.append(cmd.line)
        i = 0
        while i < len(argv):
            tok = argv[i]
            i += 1
            if not _is_flag(tok):
                continue
            flag, eq, inline = tok.partition("=")
            name = _norm(flag)
            role, nargs, _ = _FLAGS.get(name, ("unknown", "*", ""))
            if eq:
                value: Any = inline
            elif nargs == 0:
                value = None
            elif nargs == 1:
                if i < len(argv) and _is_value(argv[i]):
                    value = argv[i]
                    i += 1
                else:
                    value = []
            else:
                vals = []
                while i < len(argv) and _is_value(argv[i]):
                    vals.append(argv[i])
                    i += 1
                value = vals if vals else None
            prev = la.flags.get(name)
            f = Flag(flag, value, cmd.line)
            if prev is not None and prev.text() != f.text():
                la.notes.append(f"{flag} given more than once ({prev.text()}, then {f.text()}): the last wins, "
                                "as in argparse")
            la.flags[name] = f
    if len(used_lines) > 1:
        la.notes.append(f"flags read from {len(used_lines)} commands (lines {', '.join(map(str, used_lines))}); "
                        "a later value wins")


def _sort(la: LaunchArgs) -> None:
    for name, f in la.flags.items():
        role, _, why = _FLAGS.get(name, ("unknown", "*", ""))
        bucket = {"plan": la.applied, "workload": la.applied, "precision": la.applied, "model": la.applied,
                  "launcher": la.applied, "assumed": la.assumed, "ignored": la.ignored,
                  "not_modelled": la.not_modelled, "unknown": la.unknown}[role]
        if role == "launcher" and name not in ("nproc-per-node", "nnodes"):
            bucket = la.ignored
        bucket.append(f.text())


def _plan(la: LaunchArgs) -> None:
    p = la.plan
    for knob, flag in (("tp", "tensor-model-parallel-size"), ("pp", "pipeline-model-parallel-size"),
                       ("cp", "context-parallel-size"), ("ep", "expert-model-parallel-size"),
                       ("mbs", "micro-batch-size")):
        v = la._int(flag)
        if v is not None:
            p[knob] = v
    nl = la._int("num-layers", maximum=MAX_LAYERS)
    if nl is not None:
        p["megatron_layers"] = nl
    per = la._int("num-layers-per-virtual-pipeline-stage")
    if per is not None:
        p["vpp_layers"] = per
    for flag in ("num-virtual-stages-per-pipeline-rank", "virtual-pipeline-model-parallel-size"):
        v = la._int(flag)
        if v is not None:
            p["vpp"], p["vpp_flag"] = v, flag
            if per is not None:
                raise la._err(flag, "conflicts with --num-layers-per-virtual-pipeline-stage (give one)")
    gran = la._str("recompute-granularity")
    method = la._str("recompute-method")
    nrc = la._int("recompute-num-layers", minimum=0)
    if gran is not None and gran not in ("full", "selective"):
        raise la._err("recompute-granularity", f"must be full or selective (got {gran!r})")
    if method is not None and method not in ("uniform", "block"):
        raise la._err("recompute-method", f"must be uniform or block (got {method!r})")
    if gran == "selective" or (gran is None and la.has("recompute-activations")):
        p["recompute"] = "selective"
        p["recompute_src"] = la.text("recompute-granularity" if gran else "recompute-activations")
    elif gran == "full" or (gran is None and la.has("checkpoint-activations")):
        src = " ".join(la.text(f) for f in ("recompute-granularity", "recompute-method", "recompute-num-layers",
                                            "checkpoint-activations") if la.has(f))
        if method == "block":
            if nrc is None:
                raise la._err("recompute-num-layers", "is needed with --recompute-method block")
            p["recompute"], p["recompute_layers"] = "block", nrc
        else:
            if method is None and gran == "full":
                la.notes.append("--recompute-granularity full without --recompute-method: taken as uniform "
                                "(every layer recomputed)")
            p["recompute"] = "full"
        p["recompute_src"] = src
    etp = la._int("expert-tensor-parallel-size")
    if etp is not None:
        p["etp"] = etp
    # MoE token dispatcher: alltoall / alltoall_seq (every routed copy), allgather, flex (DeepEP
    # or HybridEP, one copy per remote node); --moe-enable-deepep is the older spelling of flex
    disp = la._str("moe-token-dispatcher-type")
    if disp is not None or la.has("moe-enable-deepep"):
        names = {"alltoall": "alltoall", "alltoall_seq": "alltoall", "allgather": "allgather",
                 "flex": "deepep"}
        if la.has("moe-enable-deepep"):
            p["moe_dispatcher"], src = "deepep", "moe-enable-deepep"
        elif disp in names:
            p["moe_dispatcher"], src = names[disp], "moe-token-dispatcher-type"
        else:
            raise la._err("moe-token-dispatcher-type", f"'{disp}' is not alltoall, alltoall_seq, allgather or flex")
        p["moe_dispatcher_src"] = la.text(src)
    split = [f for f in ("account-for-embedding-in-pipeline-split", "account-for-loss-in-pipeline-split")
             if la.has(f)]
    if split:
        la.notes.append(f"--{' / --'.join(split)}: pp*vpp may reach layers + 2 only in stacks that count "
                        "the embedding and the loss as pipeline layers (nemo); the busiest rank's "
                        "layers are the same either way")
    if la.has("use-torch-fsdp2"):
        p["zero"], p["zero_src"] = 3, la.text("use-torch-fsdp2")
    elif la.has("use-custom-fsdp") or la.has("use-megatron-fsdp"):
        strat = la._str("data-parallel-sharding-strategy") or "optim_grads_params"
        if strat not in _ZERO_STRATEGIES:
            raise la._err("data-parallel-sharding-strategy",
                          f"must be one of {', '.join(_ZERO_STRATEGIES)} (got {strat!r})")
        p["zero"] = _ZERO_STRATEGIES[strat]
        p["zero_src"] = " ".join(la.text(f) for f in ("use-custom-fsdp", "use-megatron-fsdp",
                                                      "data-parallel-sharding-strategy") if la.has(f))
    elif la.has("use-distributed-optimizer"):
        p["zero"], p["zero_src"] = 1, la.text("use-distributed-optimizer")
    la.gbs = la._int("global-batch-size")
    la.seq_len = la._int("seq-length")
    enc = la._int("encoder-seq-length")
    if la.seq_len is None:
        la.seq_len = enc
    fp8, fp4 = la._str("fp8-format"), la._str("fp4-format")
    if fp4 is not None:
        la.precision = "fp4"
    elif fp8 is not None:
        if fp8 not in ("e4m3", "hybrid"):
            raise la._err("fp8-format", f"must be e4m3 or hybrid (got {fp8!r})")
        la.precision = "fp8"
    elif la.has("bf16"):
        la.precision = "bf16"
    elif la.has("fp16"):
        la.precision = "fp16"
    if la.has("bf16") and la.has("fp16"):
        raise la._err("fp16", "conflicts with --bf16 (give one)")
    nproc, nnodes = la._int("nproc-per-node"), la._int("nnodes")
    if nproc is not None:
        la.world_size = nproc * (nnodes or 1)


def _layer_freq(la: LaunchArgs, n: int, first_dense: int) -> list[bool]:
    """Megatron --moe-layer-freq: an integer F (MoE on layers i % F == 0) or a list
    expression such as '([0]*3+[1]*58)'."""
    raw = la._str("moe-layer-freq")
    if raw is None:
        return [i >= first_dense for i in range(n)]
    if re.fullmatch(r"\d+", raw):
        f = int(raw)
        if f < 1:
            raise la._err("moe-layer-freq", f"must be >= 1 (got {f})")
        return [i >= first_dense and i % f == 0 for i in range(n)]

    def ev(node):
        if isinstance(node, ast.List):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = ev(node.left), ev(node.right)
            if isinstance(a, list) and isinstance(b, list) and len(a) + len(b) <= MAX_LAYERS:
                return a + b
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            a, b = ev(node.left), ev(node.right)
            if isinstance(a, list) and isinstance(b, int) and 0 <= b and len(a) * b <= MAX_LAYERS:
                return a * b
        raise ValueError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(raw.strip(), mode="eval")
        pattern = ev(tree.body)
        if not isinstance(pattern, list) or any(x not in (0, 1) or isinstance(x, list) for x in pattern):
            raise ValueError
    except (SyntaxError, ValueError, RecursionError):
        raise la._err("moe-layer-freq", f"must be an integer or a list such as ([0]*3+[1]*58) (got {raw!r})") from None
    if len(pattern) != n:
        raise la._err("moe-layer-freq", f"lists {len(pattern)} layers for {n}")
    return [bool(x) and i >= first_dense for i, x in enumerate(pattern)]


def _model(la: LaunchArgs, name: str) -> None:
    need = ["num-layers", "hidden-size", "num-attention-heads"]
    missing = [f"--{n}" for n in need if not la.has(n)]
    vocab_src = None
    tp = la.plan.get("tp", 1)
    if la.has("padded-vocab-size"):
        vocab = la._int("padded-vocab-size")
        vocab_src = la.text("padded-vocab-size")
    else:
        base = la._int("vocab-size")
        src = la.text("vocab-size") if base is not None else None
        tok = la._str("tokenizer-type") if la.has("tokenizer-type") else None
        if tok in _TOKENIZER_VOCAB:
            base, what = _TOKENIZER_VOCAB[tok]
            src = f"--tokenizer-type {tok} ({what})"
        elif tok == "NullTokenizer" and base is not None:
            base += 1       # Megatron's null tokenizer adds an end-of-document id
            src += " + 1 end-of-document id (NullTokenizer)"
        elif base is not None and tok is not None:
            la.notes.append(f"vocabulary taken from --vocab-size; with --tokenizer-type {tok} Megatron reads it "
                            "from the tokenizer files, which suanli does not open")
        if base is None:
            missing.append("--vocab-size (or --padded-vocab-size; the tokenizer "
                           f"{tok or 'type'} does not fix it)")
            vocab = None
        else:
            div = la._int("make-vocab-size-divisible-by")
            div = 128 if div is None else div
            mult = div * tp
            vocab = -(-base // mult) * mult
            vocab_src = src + (f", padded to a multiple of {div} x tp {tp} = {vocab}" if vocab != base else "")
    mla = la.has("multi-latent-attention") or la.has("multi-head-latent-attention")
    if mla:
        for opts in (("kv-lora-rank",), ("qk-rope-head-dim", "qk-pos-emb-head-dim"),
                     ("qk-nope-head-dim", "qk-head-dim"), ("v-head-dim",)):
            if not any(la.has(o) for o in opts):
                missing.append(" or ".join(f"--{o}" for o in opts))
    if missing:
        la.model_missing = missing
        return
    layers = la._int("num-layers", maximum=MAX_LAYERS)
    noop = la._str("noop-layers")
    if noop:
        try:
            idx = {int(x) for x in noop.split(",") if x.strip()}
        except ValueError:
            raise la._err("noop-layers", f"must be a comma-separated list of layer numbers (got {noop!r})") from None
        if any(not 0 <= i < layers for i in idx):
            raise la._err("noop-layers", f"names layers outside 0..{layers - 1}")
        la.notes.append(f"--noop-layers: {len(idx)} of the {layers} Megatron layers are empty placeholders; "
                        f"the model has {layers - len(idx)} (pipeline stages are split over {layers})")
        layers -= len(idx)
    hidden = la._int("hidden-size")
    heads = la._int("num-attention-heads")
    spec: dict = {"name": name, "layers": layers, "hidden": hidden, "heads": heads}
    notes = []
    if la.has("group-query-attention"):
        spec["kv_heads"] = la._int("num-query-groups") or 1
        if not la.has("num-query-groups"):
            notes.append("--group-query-attention without --num-query-groups: Megatron's default, 1 group")
    else:
        spec["kv_heads"] = heads
    hd = la._int("kv-channels")
    if hd is not None and (hidden % heads or hd != hidden // heads):
        spec["head_dim"] = hd
    if la.has("swiglu"):
        spec["ffn_act"] = "swiglu"
    elif la.has("squared-relu"):
        spec["ffn_act"] = "relu2"
    else:
        spec["ffn_act"] = "gelu"
    ffn = la._int("ffn-hidden-size")
    if ffn is None:
        ffn = int(4 * hidden * 2 / 3 / 64) * 64 if spec["ffn_act"] == "swiglu" else 4 * hidden
        notes.append(f"no --ffn-hidden-size: Megatron's default for this activation, {ffn}")
    spec["ffn_hidden"] = ffn
    spec["vocab"] = vocab
    spec["tied_embeddings"] = not la.has("untie-embeddings-and-output-weights")
    if spec["tied_embeddings"]:
        notes.append("no --untie-embeddings-and-output-weights: input embedding and output layer are shared "
                     "(Megatron's default)")
    if mla:
        spec["kv_heads"] = heads
        spec.pop("head_dim", None)
        spec["attention"] = {
            "kind": "mla", "q_lora_rank": la._int("q-lora-rank", minimum=0) or 0,
            "kv_lora_rank": la._int("kv-lora-rank"),
            "qk_rope_head_dim": la._int("qk-rope-head-dim", 0) if la.has("qk-rope-head-dim")
            else la._int("qk-pos-emb-head-dim", 0),
            "qk_nope_head_dim": la._int("qk-nope-head-dim") or la._int("qk-head-dim"),
            "v_head_dim": la._int("v-head-dim")}
    experts = la._int("num-experts")
    if experts is not None:
        first = la._int("first-k-dense-replace", minimum=0) or 0
        flags = _layer_freq(la, layers, first)
        width = la._int("moe-ffn-hidden-size") or la._int("moe-intermediate-size")
        if width is None:
            width = ffn
            notes.append(f"no --moe-ffn-hidden-size: Megatron's default, the FFN width {ffn}")
        topk = la._int("moe-router-topk")
        if topk is None:
            topk = 2
            notes.append("no --moe-router-topk: Megatron's default, 2")
        lay = moe_layout(flags)
        if lay is not None:
            dense, every, note = lay
            moe = {"experts": experts, "top_k": topk, "shared_experts": 0, "expert_ffn_hidden": width,
                   "dense_layers": dense}
            if every != 1:
                moe["moe_layer_every"] = every
            shared_w = la._int("moe-shared-expert-intermediate-size")
            n_shared = la._int("n-shared-experts", minimum=0)
            if shared_w:
                moe["shared_experts"] = 1
                if shared_w != width:
                    moe["shared_expert_ffn_hidden"] = shared_w
            elif n_shared:
                moe["shared_experts"] = n_shared
            # group-limited routing: Megatron --moe-router-num-groups / --moe-router-group-topk,
            # MindSpeed --n-group / --topk-group
            groups = la._int("moe-router-num-groups") or la._int("n-group")
            limit = la._int("moe-router-group-topk") or la._int("topk-group")
            if groups and limit and 1 < groups and limit < groups and experts % groups == 0:
                moe["routing_groups"] = groups
                moe["routing_group_limit"] = limit
            spec["moe"] = moe
            if note:
                notes.append(note)
    spec["source"] = f"Megatron launch arguments ({la.source}); vocab from {vocab_src}"
    if notes:
        spec["notes"] = "; ".join(notes)
    try:
        la.model = ModelSpec.model_validate(spec)
    except ValidationError as e:
        loc, msg = format_validation_error(e)
        raise InputError(f"{la.source}: model shape from the flags: {loc}: {msg}") from None
    la.notes.extend(notes)


def _name_from(source: str) -> str:
    base = Path(source).stem if source not in ("launch args",) else "launch-args"
    s = re.sub(r"[^a-z0-9.\-]+", "-", base.lower())
    s = re.sub(r"-{2,}", "-", s).strip(".-")
    return s or "launch-args"


def parse_launch_args(text_or_argv: Union[str, list[str]], *, source: str = "launch args",
                      name: Optional[str] = None, env: Optional[dict] = None) -> LaunchArgs:
    """Read Megatron-LM / MindSpeed-LLM launch arguments.

    ``text_or_argv`` is a launch script, a command line (shell quoting, variables and
    simple ``if`` blocks are understood; nothing is executed), or an already split list
    of arguments. ``env`` supplies variables the script would read from its environment.
    Raises :class:`InputError` naming the flag for a bad value (``--tensor-model-parallel-size
    8.5``), or when no Megatron flag is found.

    >>> la = parse_launch_args("torchrun --nproc_per_node 8 pretrain_gpt.py "
    ...                        "--tensor-model-parallel-size 4 --micro-batch-size 1 --bf16 --foo 3")
    >>> la.plan["tp"], la.world_size, la.precision, la.unknown
    (4, 8, 'bf16', ['--foo 3'])
    """
    if isinstance(text_or_argv, (list, tuple)):
        res = evaluate_argv(list(text_or_argv))
    elif isinstance(text_or_argv, str):
        res = evaluate_script(text_or_argv, env)
    else:
        raise InputError("launch args: give a string or a list of strings")
    la = LaunchArgs(source=source)
    la.notes.extend(res.notes)
    _collect(res.commands, la)
    if not la.flags:
        raise InputError(f"{source}: no Megatron-LM / MindSpeed-LLM flags found "
                         "(expected e.g. --tensor-model-parallel-size, --global-batch-size)")
    _sort(la)
    _plan(la)
    _model(la, name or _name_from(source))
    return la


def load_launch_args(path: Union[str, os.PathLike], *, name: Optional[str] = None,
                     env: Optional[dict] = None) -> LaunchArgs:
    """:func:`parse_launch_args` on a launch script file (regular files only, size capped)."""
    text = read_text_file(path, MAX_SCRIPT_BYTES, "launch script")
    return parse_launch_args(text, source=str(path), name=name, env=env)


_SHAPE_SKIP = {"name", "aliases", "source", "notes", "published_params_b", "published_active_params_b",
               "published_params_source"}


def shape_diff(a: ModelSpec, b: ModelSpec) -> list[str]:
    """The shape fields in which two model specs differ, as 'field a != b' (empty: same shape)."""
    da = {k: v for k, v in a.model_dump().items() if k not in _SHAPE_SKIP}
    db = {k: v for k, v in b.model_dump().items() if k not in _SHAPE_SKIP}
    if da.get("head_dim") is None or db.get("head_dim") is None:
        da["head_dim"], db["head_dim"] = a.head_dim_eff, b.head_dim_eff
    return [f"{k} {da[k]} != {db[k]}" for k in da if da[k] != db.get(k)]
