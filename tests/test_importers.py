"""Importers: Hugging Face config.json -> ModelSpec; Megatron-LM / MindSpeed-LLM launch
arguments -> plan, workload and model.

The config.json fixtures under tests/data/hf/ hold the published field values of each
model's Hugging Face config (tests/data/hf/README.md). The launch-script fixtures under
tests/data/launch/ carry the flags of real MindSpeed-LLM and Megatron-LM example scripts.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from estimator.catalog import Catalog
from estimator.describe import model_summary
from estimator.errors import InputError, SpecError
from estimator.importers import load_launch_args, model_from_hf_config, parse_launch_args, shape_diff
from estimator.importers.layout import moe_layout, window_layout
from estimator.importers.shell import UNRESOLVED, evaluate_script
from estimator.specs import ModelSpec
from estimator.yamlio import load_spec

DATA = Path(__file__).parent / "data"
HF = DATA / "hf"
LAUNCH = DATA / "launch"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def cat():
    return Catalog(use_env=False)


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in r.stderr and len(err.splitlines()) == 1, r.stderr
    for n in needles:
        assert n in err, err
    return err


# ----------------------------------------------------------------- Hugging Face configs
HF_MODELS = sorted(p.name for p in HF.iterdir() if (p / "config.json").is_file())


def test_every_catalog_fixture_is_present():
    """The models the issue names all have a config fixture (none silently dropped)."""
    for name in ("llama3-8b", "llama3-70b", "qwen2-72b", "qwen3-32b", "qwen3-30b-a3b", "qwen3-235b-a22b",
                 "mixtral-8x7b", "deepseek-v3", "gpt-oss-120b", "chatglm3-6b"):
        assert name in HF_MODELS


def _reference(cat, name) -> ModelSpec:
    if name == "chatglm3-6b":   # not in the built-in catalog; spec from the shared model data
        return load_spec(ModelSpec, DATA / "models" / "chatglm3-6b.yaml")
    return cat.model(name)


@pytest.mark.parametrize("name", HF_MODELS)
def test_params_from_config_equal_catalog(cat, name):
    """Total and active parameters derived from the config equal those of the catalog model
    (the same arithmetic on both, so equal to rounding: rel 1e-12), and every shape field
    agrees."""
    m = model_from_hf_config(HF / name / "config.json")
    ref = _reference(cat, name)
    a, b = model_summary(m), model_summary(ref)
    assert a["params_b"] == pytest.approx(b["params_b"], rel=1e-12)
    assert a["active_params_b"] == pytest.approx(b["active_params_b"], rel=1e-12)
    assert shape_diff(m, ref) == []
    assert m.name == name                      # named after its folder
    assert "config.json" in m.source


def test_published_counts_through_the_importer():
    """Independent check against published figures (model cards): Llama 3 8B checkpoint
    8,030,261,248 parameters (exact); DeepSeek-V3 671B total / 37B active (technical report,
    MTP module excluded; rounded labels, tolerance 1%); Mixtral 8x7B 46.7B / 12.9B
    (Mistral AI announcement; rounded, 1%)."""
    s = model_summary(model_from_hf_config(HF / "llama3-8b"))
    assert s["params_b"] * 1e9 == pytest.approx(8_030_261_248, abs=1)
    s = model_summary(model_from_hf_config(HF / "deepseek-v3"))
    assert s["params_b"] == pytest.approx(671, rel=0.01)
    assert s["active_params_b"] == pytest.approx(37, rel=0.02)
    s = model_summary(model_from_hf_config(HF / "mixtral-8x7b"))
    assert s["params_b"] == pytest.approx(46.7, rel=0.01)
    assert s["active_params_b"] == pytest.approx(12.9, rel=0.01)


def test_folder_file_and_mapping_give_the_same_spec():
    a = model_from_hf_config(HF / "qwen3-30b-a3b")
    b = model_from_hf_config(str(HF / "qwen3-30b-a3b" / "config.json"))
    c = model_from_hf_config(json.loads((HF / "qwen3-30b-a3b" / "config.json").read_text()), name="qwen3-30b-a3b")
    assert shape_diff(a, b) == [] and shape_diff(a, c) == []
    assert model_from_hf_config(HF / "qwen3-30b-a3b", name="mine").name == "mine"


def test_catalog_resolves_json_paths_and_folders(cat):
    m = cat.model(str(HF / "mixtral-8x7b" / "config.json"))
    assert m.moe is not None and m.moe.experts == 8
    m = cat.model(str(HF / "gpt-oss-120b"))
    assert m.sliding_window == 128 and m.sliding_window_every == 2
    with pytest.raises(SpecError, match="file not found"):
        cat.model(str(HF / "no-such" / "config.json"))
    with pytest.raises(SpecError, match="no config.json"):
        cat.model(str(HF))


def test_what_the_schema_cannot_hold_is_noted():
    v3 = model_from_hf_config(HF / "deepseek-v3")
    assert "multi-token-prediction" in v3.notes
    # group-limited routing is represented now (n_group / topk_group)
    assert (v3.moe.routing_groups, v3.moe.routing_group_limit) == (8, 4)
    glm = model_from_hf_config(HF / "glm-4.5")
    assert "partial RoPE" in glm.notes and "QK-norm" in glm.notes
    scout = model_from_hf_config(HF / "llama4-scout")
    assert "vision encoder" in scout.notes and "chunked attention" in scout.notes


def _llama(**over):
    d = {"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 4, "hidden_size": 256,
         "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000}
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


def test_sliding_window_rules():
    # Mistral v0.1: every layer uses the window
    m = model_from_hf_config(_llama(architectures=["MistralForCausalLM"], sliding_window=4096), name="m")
    assert m.sliding_window == 4096 and m.sliding_window_every is None
    # Qwen2: sliding_window is present but off unless use_sliding_window
    q = model_from_hf_config(_llama(architectures=["Qwen2ForCausalLM"], sliding_window=32768), name="q")
    assert q.sliding_window is None
    q = model_from_hf_config(_llama(architectures=["Qwen2ForCausalLM"], sliding_window=4096,
                                    use_sliding_window=True, max_window_layers=2), name="q")
    assert q.sliding_window == 4096 and q.sliding_window_every == 2     # layers 2, 3 slide
    # Llama ignores a stray sliding_window; explicit layer_types win everywhere
    assert model_from_hf_config(_llama(sliding_window=4096), name="l").sliding_window is None
    lt = ["sliding_attention"] * 3 + ["full_attention"]
    m = model_from_hf_config(_llama(layer_types=lt, sliding_window=512), name="l")
    assert m.sliding_window == 512 and m.sliding_window_every == 4


def test_moe_layer_patterns():
    assert moe_layout([False] * 3 + [True] * 58) == (3, 1, None)             # DeepSeek first_k_dense
    assert moe_layout([i % 2 == 1 for i in range(48)]) == (0, 2, None)      # Llama 4 Maverick
    assert moe_layout([False] * 4) is None
    dense, every, note = moe_layout([True, False, False, True, True, True])  # irregular
    assert (dense, every) == (2, 1) and "0, 3-5" in note                    # counts kept
    assert window_layout([True, False] * 3) == (True, 2, None)
    assert window_layout([True] * 4) == (True, None, None)
    # Qwen3-MoE decoder_sparse_step 2 and mlp_only_layers
    cfg = json.loads((HF / "qwen3-30b-a3b" / "config.json").read_text())
    m = model_from_hf_config({**cfg, "decoder_sparse_step": 2}, name="x")
    assert m.moe.moe_layer_every == 2 and m.moe.dense_layers == 0
    m = model_from_hf_config({**cfg, "mlp_only_layers": [0, 1]}, name="x")
    assert m.moe.dense_layers == 2 and m.moe.moe_layer_every == 1
    m = model_from_hf_config({**cfg, "mlp_only_layers": [5]}, name="x")       # not expressible
    assert m.moe.dense_layers == 1 and "do not follow" in m.notes
    # DeepSeek moe_layer_freq 2 after 1 dense layer: MoE on even layers >= 1 -> 2, 4, ...
    v2 = json.loads((HF / "deepseek-v2-lite" / "config.json").read_text())
    m = model_from_hf_config({**v2, "moe_layer_freq": 2}, name="x")
    n_moe = (m.layers - m.moe.dense_layers) // m.moe.moe_layer_every
    assert n_moe == len([i for i in range(27) if i >= 1 and i % 2 == 0])


@pytest.mark.parametrize("cfg, field, msg", [
    (_llama(architectures=["FalconForCausalLM"]), "architectures", "unsupported architecture 'FalconForCausalLM'"),
    (_llama(architectures=None), "architectures", "required field missing"),
    (_llama(architectures=None, model_type="bert"), "model_type", "unsupported model_type"),
    (_llama(hidden_size=None), "hidden_size", "required field missing"),
    (_llama(hidden_size=256.0), "hidden_size", "must be an integer"),
    (_llama(num_hidden_layers=True), "num_hidden_layers", "must be an integer"),
    (_llama(vocab_size=0), "vocab_size", "must be >= 1"),
    (_llama(num_key_value_heads=3), "num_key_value_heads", "multiple of kv_heads"),
    (_llama(architectures=["Qwen3MoeForCausalLM"], num_experts=8, num_experts_per_tok=2),
     "moe_intermediate_size", "required field missing"),
    (_llama(tie_word_embeddings="no"), "tie_word_embeddings", "true or false"),
])
def test_bad_configs_name_the_field(cfg, field, msg):
    with pytest.raises(SpecError) as e:
        model_from_hf_config(cfg, name="x")
    assert e.value.field == field
    assert msg in str(e.value)


def test_bad_json_files(tmp_path):
    cases = {
        "nan.json": '{"architectures": ["LlamaForCausalLM"], "hidden_size": NaN}',
        "dup.json": '{"hidden_size": 1, "hidden_size": 2}',
        "list.json": "[1, 2]",
        "broken.json": '{"architectures": [',
        "latin1.json": b'{"a": "\xff"}',
    }
    for name, text in cases.items():
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(SpecError) as e:
            model_from_hf_config(p)
        assert str(p) in str(e.value)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 5_000_000)
    with pytest.raises(SpecError, match="too large"):
        model_from_hf_config(big)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_and_devices_are_refused_without_hanging(tmp_path):
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    for p in (fifo, link, tmp_path):
        r = cli("model", str(p), timeout=60)
        one_line_error(r, "suanli: error:")
    r = cli("train", "--megatron-args", "@/dev/zero", "--chip", "h100", timeout=60)
    one_line_error(r, "not a regular file")


def test_cli_model_from_config_matches_catalog():
    r = cli("model", "tests/data/hf/qwen3-30b-a3b/config.json", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    ref = json.loads(cli("model", "qwen3-30b-a3b", "--json").stdout)
    assert d["params_b"] == pytest.approx(ref["params_b"], rel=1e-12)
    assert d["active_params_b"] == pytest.approx(ref["active_params_b"], rel=1e-12)
    bad = Path("tests/data/hf/llama3-8b/config.json")
    r = cli("model", str(bad.parent.parent))          # a folder without config.json
    one_line_error(r, "no config.json")


# ----------------------------------------------------------------- shell evaluation
def test_shell_expansion_arrays_and_conditionals():
    r = evaluate_script(r'''
A=1
B=${B:-7}
C=$((A + B * 2))
S="--x $A \
   --y ${B}"
ARR=( --p 1 "--q 2" )
ARR+=(--r)
MODE=fast
if [[ "$MODE" == "slow" ]]; then ARR+=(--slow); elif [ "$C" -gt 10 ]; then ARR+=(--big); else ARR+=(--small); fi
for i in 1 2; do ARR+=(--loop); done
run $S ${ARR[@]} "${ARR[@]}" --sub $(hostname) 2>&1 | tee log
''')
    argv = r.commands[0].argv
    assert argv[:5] == ["run", "--x", "1", "--y", "7"]
    assert argv[5:11] == ["--p", "1", "--q", "2", "--r", "--big"]           # unquoted: split
    assert argv[11:15] == ["--p", "1", "--q 2", "--r"]                      # quoted: one word each
    assert argv[-1].startswith(UNRESOLVED)                                  # $(hostname) not run
    assert r.commands[1].argv == ["tee", "log"]
    assert any("loop" in n for n in r.notes) and any("hostname" in n for n in r.notes)
    assert r.env["C"] == "15"


def test_shell_does_not_guess_unknown_conditions():
    r = evaluate_script("if [ -f /etc/passwd ]; then TP=8; else TP=4; fi\nrun --tp $TP")
    assert r.commands[0].argv == ["run", "--tp"]          # branch skipped, TP unset
    assert any("not evaluated" in n for n in r.notes)
    with pytest.raises(InputError, match="tensor-model-parallel-size: has no value"):
        parse_launch_args("if [ -f /x ]; then TP=8; fi\nrun --tensor-model-parallel-size $TP --bf16")


def test_shell_syntax_errors_are_one_line():
    for bad in ('X="unterminated', "if true; then echo", "A=(1 2", "echo $((1+"):
        with pytest.raises(InputError, match="launch script line"):
            evaluate_script(bad)
    r = evaluate_script("X=$((2**1000000))\nrun --v $X")             # no runaway arithmetic
    assert UNRESOLVED in r.commands[0].argv[-1]


# ----------------------------------------------------------------- launch arguments
def test_mindspeed_llama2_70b_script(cat):
    la = load_launch_args(LAUNCH / "pretrain_llama2_70b_ptd.sh")
    knobs, origin, notes = la.knobs(la.model)
    assert knobs == {"tp": 8, "pp": 4, "cp": 1, "ep": 1, "mbs": 1, "vpp": 4, "recompute": "none", "zero": 0}
    assert (la.gbs, la.seq_len, la.precision, la.world_size) == (1024, 4096, "bf16", 32)
    assert shape_diff(la.model, cat.model("llama2-70b")) == []         # vocab 32000 from Llama2Tokenizer
    assert la.unknown == [] and la.not_modelled == []
    assert "--sequence-parallel" in la.assumed and "--lr 1.0e-6" in la.ignored
    assert "Megatron default" in origin["cp"] and "--use-distributed-optimizer" in origin["zero"]


def test_megatron_llama3_8b_script(cat):
    la = load_launch_args(LAUNCH / "train_llama3_8b_h100_fp8.sh")
    knobs, origin, _ = la.knobs(la.model)
    assert knobs == {"tp": 1, "pp": 1, "cp": 1, "ep": 1, "mbs": 1, "vpp": 1, "recompute": "none", "zero": 1}
    assert "Megatron default" in origin["pp"]                 # the pp flag is commented out
    assert (la.gbs, la.seq_len, la.precision, la.world_size) == (128, 8192, "fp8", 8)
    # NullTokenizer: --vocab-size 128256 + 1 end-of-document id, padded to a multiple of 128
    assert la.model.vocab == 128384
    assert shape_diff(la.model, cat.model("llama3-8b")) == ["vocab 128384 != 128256"]
    assert la.not_modelled == ["--fp8-param-gather"] and la.unknown == []
    assert any("dirname" in n for n in la.notes)


def test_mindspeed_deepseek_v3_script(cat):
    la = load_launch_args(LAUNCH / "pretrain_deepseek3_671b_4k_ptd.sh")
    knobs, _, _ = la.knobs(la.model)
    # no --expert-tensor-parallel-size: Megatron's default expert TP = tp; the script's
    # --moe-token-dispatcher-type alltoall_seq is the alltoall dispatcher
    assert knobs == {"tp": 4, "pp": 8, "cp": 1, "ep": 8, "etp": 4, "moe_dispatcher": "alltoall", "mbs": 1,
                     "vpp": 1, "recompute": "full", "zero": 1}
    assert (la.gbs, la.seq_len, la.world_size) == (3840, 4096, 512)
    assert shape_diff(la.model, cat.model("deepseek-v3")) == []      # 64 layers - 3 no-op = 61
    assert la.unknown == ["--mla-fa-without-pad"]
    for f in ("--moe-fb-overlap", "--mtp-num-layers 1", "--schedules-method dualpipev", "--swap-optimizer"):
        assert f in la.not_modelled


def test_unknown_flags_are_listed_not_dropped():
    la = parse_launch_args("torchrun --nproc_per_node=8 pretrain_gpt.py --tensor-model-parallel-size 2 "
                           "--frobnicate 3 --use-deter-comp --bf16 --lr 1e-4")
    assert la.unknown == ["--frobnicate 3", "--use-deter-comp"]
    assert la.plan["tp"] == 2 and la.world_size == 8 and la.ignored == ["--lr 1e-4"]
    la = parse_launch_args(["--tensor-model-parallel-size", "2", "--what", "--seq-length", "128"])
    assert la.unknown == ["--what"] and la.seq_len == 128


def test_recompute_and_interleaving_resolve_against_the_model(cat):
    m = cat.model("llama2-70b")
    base = "--pipeline-model-parallel-size 4 --recompute-granularity full --recompute-method block "
    k, _, notes = parse_launch_args(base + "--recompute-num-layers 5").knobs(m)
    assert k["recompute"] == "partial" and "5 of 20 layers" in notes[0]
    assert parse_launch_args(base + "--recompute-num-layers 20").knobs(m)[0]["recompute"] == "full"
    assert parse_launch_args(base + "--recompute-num-layers 0").knobs(m)[0]["recompute"] == "none"
    assert parse_launch_args("--recompute-granularity selective").knobs(m)[0]["recompute"] == "selective"
    assert parse_launch_args("--recompute-activations").knobs(m)[0]["recompute"] == "selective"
    la = parse_launch_args("--pipeline-model-parallel-size 4 --num-layers-per-virtual-pipeline-stage 3")
    with pytest.raises(InputError, match="do not split into chunks of 3"):
        la.knobs(m)
    assert parse_launch_args("--pipeline-model-parallel-size 4 --num-virtual-stages-per-pipeline-rank 2"
                             ).knobs(m)[0]["vpp"] == 2
    # an explicit pp re-counts the interleaving: 5 layers per virtual stage over pp 2 -> vpp 8
    la = parse_launch_args("--pipeline-model-parallel-size 4 --num-layers-per-virtual-pipeline-stage 5")
    assert la.knobs(m)[0]["vpp"] == 4 and la.knobs(m, pp=2)[0]["vpp"] == 8
    assert parse_launch_args("--use-torch-fsdp2").knobs(m)[0]["zero"] == 3
    assert parse_launch_args("--use-megatron-fsdp --data-parallel-sharding-strategy optim_grads"
                             ).knobs(m)[0]["zero"] == 2


def test_model_from_shape_flags():
    la = parse_launch_args("--num-layers 24 --hidden-size 2048 --num-attention-heads 16 --ffn-hidden-size 5504 "
                           "--swiglu --num-experts 8 --moe-router-topk 2 --untie-embeddings-and-output-weights "
                           "--vocab-size 151936 --make-vocab-size-divisible-by 1 --moe-layer-freq '([0]*2+[1]*22)'")
    m = la.model
    assert (m.layers, m.kv_heads, m.vocab, m.ffn_act, m.tied_embeddings) == (24, 16, 151936, "swiglu", False)
    assert m.moe.experts == 8 and m.moe.dense_layers == 2 and m.moe.expert_ffn_hidden == 5504
    # Megatron's defaults are applied and said: ffn 4h (gelu), tied embeddings, vocab padded to 128 x tp
    la = parse_launch_args("--num-layers 2 --hidden-size 64 --num-attention-heads 4 --vocab-size 1000 "
                           "--tensor-model-parallel-size 2")
    assert la.model.ffn_hidden == 256 and la.model.tied_embeddings and la.model.vocab == 1024
    assert any("Megatron's default" in n for n in la.notes)
    la = parse_launch_args("--num-layers 2 --hidden-size 64 --num-attention-heads 4 --tokenizer-type PretrainedFromHF")
    assert la.model is None and any("--vocab-size" in x for x in la.model_missing)


@pytest.mark.parametrize("args, needle", [
    ("--tensor-model-parallel-size 8.5", "--tensor-model-parallel-size: must be a positive integer (got '8.5')"),
    ("--tensor-model-parallel-size 0", "must be >= 1"),
    ("--micro-batch-size --bf16", "--micro-batch-size: has no value"),
    ("--recompute-granularity most", "must be full or selective"),
    ("--fp8-format e5m2", "must be e4m3 or hybrid"),
    ("--bf16 --fp16", "conflicts with --bf16"),
    ("--tensor-model-parallel-size $(nproc)", "does not evaluate"),
    ("--lr 1", "no Megatron"),          # only flags with no bearing: still accepted (ignored)
    ("echo hello", "no Megatron-LM / MindSpeed-LLM flags found"),
])
def test_bad_launch_values(args, needle):
    if needle == "no Megatron":
        assert parse_launch_args(args).ignored == ["--lr 1"]
        return
    with pytest.raises(InputError) as e:
        parse_launch_args(args)
    assert needle in str(e.value)


# ----------------------------------------------------------------- CLI
def test_cli_bad_launch_args_exit_2():
    one_line_error(cli("train", "--megatron-args", "--tensor-model-parallel-size 8.5 --seq-length 4096",
                       "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "64"),
                   "--tensor-model-parallel-size: must be a positive integer (got '8.5')")
    # tp 3 does not divide llama3-8b's 32 heads: the rule, and that tp came from the launch args
    one_line_error(cli("train", "--megatron-args", "--tensor-model-parallel-size 3 --seq-length 4096 --bf16",
                       "--model", "llama3-8b", "--chip", "h100", "--chips", "24", "--gbs", "48"),
                   "not divisible by tp (3)", "launch args")
    one_line_error(cli("train", "--megatron-args", "@tests/data/launch/missing.sh", "--chip", "h100"),
                   "file not found")
    one_line_error(cli("train", "--megatron-args", "--seq-length 4096", "--chip", "h100", "--chips", "8"),
                   "no --model given", "--num-layers")
    one_line_error(cli("train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8"),
                   "Missing option '--seq-len'")


def test_cli_train_with_launch_args_explicit_flags_win():
    r = cli("train", "--megatron-args", "@tests/data/launch/pretrain_llama2_70b_ptd.sh", "--chip", "h100",
            "--gbs", "512", "--mbs", "2", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    p = d["plan"]
    # mbs and gbs from the flags; tp, pp, vpp, seq, precision, zero from the script;
    # 32 chips from --nnodes 4 x --nproc_per_node 8; model from the shape flags
    assert (p["mbs"], p["gbs"], p["tp"], p["pp"], p["vpp"], p["seq_len"], p["zero"], p["precision"]) == \
        (2, 512, 8, 4, 4, 4096, 0, "bf16")
    assert d["chips"] == 32 and p["dp"] == 1
    la = d["launch_args"]
    assert set(la["overridden"]) == {"mbs", "gbs"}
    assert {"tp", "pp", "vpp", "seq_len", "precision", "zero", "chips", "model"} <= set(la["from_args"])
    assert "llama2-70b" in la["from_args"]["model"]
    assert la["unknown"] == [] and la["ignored"]


def test_cli_search_ranks_the_launch_plan():
    r = cli("search", "--megatron-args", "@tests/data/launch/pretrain_llama2_70b_ptd.sh", "--chip", "h100",
            "--top", "3", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["counts"]["evaluated"] > 1                     # the plan is searched, not pinned
    assert (d["chips"], d["gbs"], d["seq_len"]) == (32, 1024, 4096)
    lp = d["launch_plan"]
    assert (lp["plan"]["tp"], lp["plan"]["pp"], lp["plan"]["vpp"]) == (8, 4, 4)
    best = d["top"][0]["tokens_per_s"]
    assert lp["ratio_to_best"] == pytest.approx((lp["tokens_per_s"] if lp["fits"] else 0) / best)
    assert lp["ratio_to_best"] <= 1 + 1e-9


def test_readme_tour_lines_run():
    """The two README tour lines for the importers work on the files the repository ships."""
    readme = (ROOT / "README.md").read_text()
    lines = [ln.split("#")[0].split() for ln in readme.splitlines()
             if ln.startswith("suanli model tests/data/hf/") or ln.startswith("suanli train --megatron-args @")]
    assert len(lines) == 2
    for argv in lines:
        r = cli(*argv[1:])
        assert r.returncode == 0, (argv, r.stderr)
        assert r.stdout.strip()


def test_merge_reports_every_flag_and_the_overrides(cat):
    """The JSON block the CLI adds (launch_args): what was taken, what was overridden, what was
    not used, without running the estimator."""
    from estimator.cli.launch_opts import apply

    text = ("torchrun --nnodes 2 --nproc_per_node 8 pretrain_gpt.py --tensor-model-parallel-size 2 "
            "--pipeline-model-parallel-size 2 --micro-batch-size 1 --seq-length 2048 --fp16 --frobnicate 3 "
            "--swap-attention --lr 3e-4")
    cli_args = dict(model="llama3-8b", chips=None, gbs=None, seq_len=4096, precision=None, tp=None, pp=4,
                    dp=None, cp=None, ep=None, vpp=None, mbs=None, recompute=None, zero=None)
    out, merged = apply(text, cli_args, cat, "h100")
    d = merged.to_dict()
    assert (out["tp"], out["pp"], out["seq_len"], out["precision"], out["chips"]) == (2, 4, 4096, "fp16", 16)
    assert out["gbs"] == 1 * 16 // (2 * 4)          # Megatron's default: mbs x dp
    assert set(d["overridden"]) == {"pp", "seq_len"}
    assert d["unknown"] == ["--frobnicate 3"] and d["not_modelled"] == ["--swap-attention"]
    assert d["ignored"] == ["--lr 3e-4"]
    assert "Megatron's default" in d["from_args"]["gbs"]
    assert any("--sequence-parallel" in n for n in d["notes"])     # tp 2 without it
    # ranks to packages: 16 ranks are 8 Ascend 910C (two dies each)
    out, merged = apply(text, {**cli_args, "pp": None}, cat, "ascend-910c")
    assert out["chips"] == 8 and "2 per ascend-910c" in merged.from_args["chips"]
    with pytest.raises(InputError, match="not a whole number"):
        apply("torchrun --nproc_per_node 3 x.py --tensor-model-parallel-size 1", cli_args, cat, "ascend-910c")


# ----------------------------------------------------------------- robustness
_SHELL_BITS = list("ab=$(){}[]\"'`\\ \n;&|<>#-*!0123456789") + [
    "--tensor-model-parallel-size ", "if ", " then ", " fi", " else ", "$((", "${A:-", "${A[@]}", "A=(", "A+=(",
    " done", "for ", " do ", "case ", "esac", "<<EOF\n", "\nEOF\n", "[[ ", " ]]", " -gt ", "--num-layers 4 ",
    "--hidden-size 8 ", "--num-attention-heads 2 ", "--vocab-size 10 ", "--num-experts 2 ", "f() {", "}",
    "export ", "declare -a ", "2>&1 ", "$A", "--moe-layer-freq ", "--noop-layers 1,2 "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SHELL_BITS), max_size=60).map("".join))
@example("run --tensor-model-parallel-size 2 A=(1)")      # an array assignment as an argument
@example("2>&1 [[ A=(1) ]] --bf16")                       # ... inside a test
@example("--num-layers 10000000000 --hidden-size 8 --num-attention-heads 2 --vocab-size 10")
@example("X=$((2**99999999))")
def test_any_launch_text_gives_a_result_or_one_input_error(text):
    try:
        la = parse_launch_args(text)
    except InputError as e:
        assert "\n" not in str(e)
        return
    if la.model is not None:
        la.knobs(la.model)


_HF_VALUES = [None, 0, -1, 1, 3, 1.5, True, "x", [], [0], [1, 2], {"a": 1}, 10 ** 30, 9999, ["full_attention"] * 3]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HF_MODELS), st.data())
def test_any_mangled_config_gives_a_spec_or_one_spec_error(name, data):
    cfg = json.loads((HF / name / "config.json").read_text())
    body = cfg["text_config"] if "text_config" in cfg else cfg
    for key in data.draw(st.lists(st.sampled_from(sorted(body)), min_size=1, max_size=3)):
        value = data.draw(st.sampled_from(_HF_VALUES + ["<drop>"]))
        if value == "<drop>":
            body.pop(key, None)
        else:
            body[key] = value
    try:
        model_from_hf_config(cfg, name="x")
    except SpecError as e:
        assert "\n" not in str(e)


def test_huge_layer_counts_are_refused_quickly():
    cfg = _llama(num_hidden_layers=10 ** 12)
    with pytest.raises(SpecError, match="must be <= 10000"):
        model_from_hf_config(cfg, name="x")


def test_docstring_examples_run():
    import doctest

    from estimator.importers import hf_config, launch_args

    for mod in (hf_config, launch_args):
        res = doctest.testmod(mod)
        assert res.attempted > 0 and res.failed == 0, mod.__name__


def test_expert_tp_and_pipeline_split_flags_are_read_and_explained():
    la = parse_launch_args("--tensor-model-parallel-size 2 --expert-model-parallel-size 32 "
                           "--expert-tensor-parallel-size 1 --account-for-embedding-in-pipeline-split "
                           "--account-for-loss-in-pipeline-split --bf16")
    for flag in ("expert-tensor-parallel-size", "account-for-embedding-in-pipeline-split",
                 "account-for-loss-in-pipeline-split"):
        assert not any(flag in x for x in la.unknown + la.not_modelled), flag
    notes = " ".join(la.notes)
    assert "layers + 2" in notes
    # the expert TP degree is a plan knob: read as given, and Megatron's default (= tp) without it
    cat = Catalog(use_env=False)
    moe = cat.model("qwen3-235b-a22b")
    knobs, origin, _ = la.knobs(moe)
    assert knobs["etp"] == 1 and "expert-tensor-parallel-size" in origin["etp"]
    knobs, origin, _ = parse_launch_args("--tensor-model-parallel-size 2 --expert-model-parallel-size 8 "
                                         "--bf16").knobs(moe)
    assert knobs["etp"] == 2 and "default" in origin["etp"]
    dense, _, _ = parse_launch_args("--tensor-model-parallel-size 2 --bf16").knobs(cat.model("llama3-8b"))
    assert "etp" not in dense


def test_moe_dispatcher_flags_are_read():
    """--moe-token-dispatcher-type alltoall / alltoall_seq / allgather / flex (and the older
    --moe-enable-deepep) name the MoE token dispatcher; anything else is refused naming the flag."""
    cat = Catalog(use_env=False)
    moe = cat.model("qwen3-235b-a22b")
    for flags, want in (("--moe-token-dispatcher-type allgather", "allgather"),
                        ("--moe-token-dispatcher-type alltoall_seq", "alltoall"),
                        ("--moe-token-dispatcher-type flex --moe-flex-dispatcher-backend deepep", "deepep"),
                        ("--moe-enable-deepep", "deepep")):
        la = parse_launch_args(f"--tensor-model-parallel-size 2 --expert-model-parallel-size 8 {flags} --bf16")
        knobs, origin, _ = la.knobs(moe)
        assert knobs["moe_dispatcher"] == want and "moe-" in origin["moe_dispatcher"], flags
        assert not any("dispatcher" in x or "deepep" in x for x in la.unknown + la.not_modelled), flags
    knobs, _, _ = parse_launch_args("--tensor-model-parallel-size 2 --bf16").knobs(moe)
    assert "moe_dispatcher" not in knobs            # silent: the stack's default
    with pytest.raises(InputError, match="moe-token-dispatcher-type"):
        parse_launch_args("--moe-token-dispatcher-type scatter --bf16")
