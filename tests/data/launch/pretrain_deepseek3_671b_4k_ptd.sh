#!/bin/bash
# Test fixture: the flags (and values) of MindSpeed-LLM's DeepSeek-V3 pretraining example,
# Ascend/MindSpeed-LLM examples/mcore/deepseek3/pretrain_deepseek3_671b_4k_ptd.sh: 64 nodes x
# 8 NPUs, TP 4, PP 8, EP 8, 64 Megatron layers of which 3 are no-op padding (61 real), MLA,
# 256 routed + 1 shared expert, 3 leading dense layers, full uniform recompute, distributed
# optimizer, DualPipeV, MTP, swap-optimizer and other features the estimate does not model.
NPUS_PER_NODE=8
NNODES=64
NODE_RANK=0
MASTER_ADDR=localhost
MASTER_PORT=6000

TP=4
PP=8
EP=8
CP=1
CP_TYPE='ulysses_cp_algo'
NUM_LAYERS=64
SEQ_LEN=4096
MBS=1
GBS=3840

DISTRIBUTED_ARGS="--nproc_per_node $NPUS_PER_NODE --nnodes $NNODES --node_rank $NODE_RANK \
    --master_addr $MASTER_ADDR --master_port $MASTER_PORT"

PARALLEL_ARGS="
    --tensor-model-parallel-size ${TP} \
    --pipeline-model-parallel-size ${PP} \
    --expert-model-parallel-size ${EP} \
    --context-parallel-size ${CP} \
    --context-parallel-algo ${CP_TYPE} \
    --sequence-parallel \
    --moe-tp-extend-ep \
    --schedules-method dualpipev \
    --moe-fb-overlap \
    --noop-layers 61,62,63
"

MEMORY_ARGS="
    --use-distributed-optimizer \
    --swap-optimizer \
    --swap-optimizer-times 4 \
    --recompute-granularity full \
    --recompute-method uniform \
    --recompute-num-layers 1
"

MLA_ARGS="
    --multi-head-latent-attention \
    --q-lora-rank 1536 \
    --kv-lora-rank 512 \
    --qk-rope-head-dim 64 \
    --qk-nope-head-dim 128 \
    --v-head-dim 128 \
    --qk-layernorm \
    --mla-fa-without-pad
"

MOE_ARGS="
    --num-experts 256 \
    --moe-router-topk 8 \
    --moe-intermediate-size 2048 \
    --moe-ffn-hidden-size 2048 \
    --n-shared-experts 1 \
    --first-k-dense-replace 3 \
    --moe-layer-freq 1 \
    --moe-grouped-gemm \
    --moe-permutation-async-comm \
    --moe-token-dispatcher-type alltoall_seq \
    --moe-router-load-balancing-type noaux_tc \
    --moe-router-score-function sigmoid \
    --moe-router-enable-expert-bias \
    --moe-aux-loss-coeff 0.0001 \
    --n-group 8 \
    --topk-group 4 \
    --routed-scaling-factor 2.5 \
    --seq-aux \
    --norm-topk-prob \
    --router-gating-in-fp32
"

MODEL_ARGS="
    --spec mindspeed_llm.tasks.models.spec.deepseek_spec layer_spec \
    --use-mcore-models \
    --num-layers ${NUM_LAYERS} \
    --hidden-size 7168 \
    --ffn-hidden-size 18432 \
    --num-attention-heads 128 \
    --swiglu \
    --untie-embeddings-and-output-weights \
    --disable-bias-linear \
    --normalization RMSNorm \
    --norm-epsilon 1e-6 \
    --position-embedding-type rope \
    --use-rotary-position-embeddings \
    --rotary-base 10000 \
    --max-position-embeddings 163840 \
    --rope-scaling-type yarn \
    --rope-scaling-factor 40 \
    --rope-scaling-beta-fast 32 \
    --rope-scaling-beta-slow 1 \
    --rope-scaling-mscale 1.0 \
    --rope-scaling-mscale-all-dim 1.0 \
    --rope-scaling-original-max-position-embeddings 4096 \
    --tokenizer-type PretrainedFromHF \
    --tokenizer-name-or-path ./tokenizer \
    --vocab-size 129280 \
    --padded-vocab-size 129280 \
    --make-vocab-size-divisible-by 1 \
    --mtp-num-layers 1 \
    --mtp-loss-scaling-factor 0.3 \
    --mtp-mem-efficient-logits
"

TRAIN_ARGS="
    --seq-length ${SEQ_LEN} \
    --micro-batch-size ${MBS} \
    --global-batch-size ${GBS} \
    --bf16 \
    --lr 1.0e-5 \
    --min-lr 1.0e-7 \
    --lr-decay-style cosine \
    --lr-warmup-iters 500 \
    --train-iters 2000 \
    --weight-decay 1e-2 \
    --clip-grad 1.0 \
    --adam-beta1 0.9 \
    --adam-beta2 0.999 \
    --initial-loss-scale 65536 \
    --init-method-std 0.02 \
    --attention-dropout 0.0 \
    --hidden-dropout 0.0 \
    --use-flash-attn \
    --use-fused-rotary-pos-emb \
    --use-fused-swiglu \
    --use-fused-rmsnorm \
    --no-masked-softmax-fusion \
    --attention-softmax-in-fp32 \
    --gemm-gradient-accumulation-fusion \
    --reset-position-ids \
    --manual-gc \
    --manual-gc-interval 50 \
    --no-shared-storage \
    --use-ascend-coc \
    --coc-fused-kernel \
    --no-load-optim \
    --no-load-rng \
    --distributed-timeout-minutes 120
"

python -m torch.distributed.launch $DISTRIBUTED_ARGS pretrain_gpt.py \
    $PARALLEL_ARGS $MEMORY_ARGS $MLA_ARGS $MOE_ARGS $MODEL_ARGS $TRAIN_ARGS \
    --data-path ./data --split 100,0,0 \
    --log-interval 1 --save-interval 2000 --eval-interval 2000 --eval-iters 0 \
    --distributed-backend nccl \
    | tee logs/pretrain_deepseek3_671b_4k_ptd.log
