#!/bin/bash
# Llama 2 70B pretraining on 4 Atlas 800T A2 nodes (32 x Ascend 910B), in the style of the
# MindSpeed-LLM example launch scripts (examples/mcore/llama2/pretrain_llama2_70b_ptd.sh:
# same parallel layout, batch and model flags). Used by the README:
#   suanli train --megatron-args @docs/examples/pretrain_llama2_70b.sh --chip ascend-910b --chips 32
export CUDA_DEVICE_MAX_CONNECTIONS=1

NPUS_PER_NODE=8
NNODES=4
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-localhost}
MASTER_PORT=6001
WORLD_SIZE=$((NPUS_PER_NODE * NNODES))

DATA_PATH="/data/llama2/pretrain_text_document"
TOKENIZER_MODEL="/models/llama-2-70b-hf/tokenizer.model"
CKPT_DIR="/ckpt/llama2-70b"

TP=8
PP=4

DISTRIBUTED_ARGS="
    --nproc_per_node $NPUS_PER_NODE \
    --nnodes $NNODES \
    --node_rank $NODE_RANK \
    --master_addr $MASTER_ADDR \
    --master_port $MASTER_PORT
"

# parallel layout and batch
GPT_ARGS="
    --tensor-model-parallel-size ${TP} \
    --pipeline-model-parallel-size ${PP} \
    --num-layers-per-virtual-pipeline-stage 5 \
    --sequence-parallel \
    --micro-batch-size 1 \
    --global-batch-size 1024 \
    --seq-length 4096 \
    --bf16 \
    --use-mcore-models \
    --use-flash-attn \
    --use-fused-swiglu \
    --use-fused-rmsnorm \
    --use-fused-rotary-pos-emb \
    --no-masked-softmax-fusion \
    --attention-softmax-in-fp32 \
    --no-gradient-accumulation-fusion
"

# model shape: Llama 2 70B
MODEL_ARGS="
    --num-layers 80 \
    --hidden-size 8192 \
    --ffn-hidden-size 28672 \
    --num-attention-heads 64 \
    --group-query-attention \
    --num-query-groups 8 \
    --swiglu \
    --untie-embeddings-and-output-weights \
    --disable-bias-linear \
    --normalization RMSNorm \
    --position-embedding-type rope \
    --max-position-embeddings 4096 \
    --tokenizer-type Llama2Tokenizer \
    --tokenizer-model ${TOKENIZER_MODEL} \
    --make-vocab-size-divisible-by 1
"

OPTIMIZER_ARGS="
    --lr 1.0e-6 \
    --min-lr 1.0e-7 \
    --lr-decay-style cosine \
    --lr-warmup-fraction 0.01 \
    --weight-decay 0.1 \
    --clip-grad 1.0 \
    --adam-beta1 0.9 \
    --adam-beta2 0.95 \
    --adam-eps 1e-5 \
    --initial-loss-scale 4096.0 \
    --init-method-std 0.01 \
    --attention-dropout 0.0 \
    --hidden-dropout 0.0 \
    --train-iters 2000
"

DATA_ARGS="--data-path $DATA_PATH --split 949,50,1"
OUTPUT_ARGS="--log-interval 1 --save-interval 2000 --eval-interval 1000 --eval-iters 10"

mkdir -p logs
torchrun $DISTRIBUTED_ARGS pretrain_gpt.py \
    $GPT_ARGS \
    $MODEL_ARGS \
    $OPTIMIZER_ARGS \
    $DATA_ARGS \
    $OUTPUT_ARGS \
    --distributed-backend nccl \
    --load $CKPT_DIR \
    --save $CKPT_DIR \
    | tee logs/pretrain_llama2_70b.log
