#!/bin/bash
# Test fixture: every flag (and value) of MindSpeed-LLM's Llama 2 70B pretraining example,
# Ascend/MindSpeed-LLM examples/mcore/llama2/pretrain_llama2_70b_ptd.sh: 4 nodes x 8 NPUs,
# TP 8, PP 4, 5 layers per virtual pipeline stage, mbs 1, gbs 1024, seq 4096, bf16, no
# distributed optimizer, no recompute. Laid out as such scripts are: variables, quoted
# blocks of arguments with a blank line inside one, placeholders with spaces, a pipe.
export CUDA_DEVICE_MAX_CONNECTIONS=1

NPUS_PER_NODE=8
NNODES=4
NODE_RANK=0
MASTER_ADDR=localhost
MASTER_PORT=6001
WORLD_SIZE=$(($NPUS_PER_NODE*$NNODES))

DATA_PATH="your data path"
TOKENIZER_MODEL="your tokenizer path"
CKPT_LOAD_DIR="your model ckpt path"
CKPT_SAVE_DIR="your model save ckpt path"
TP=8
PP=4

DISTRIBUTED_ARGS="
    --nproc_per_node $NPUS_PER_NODE \
    --nnodes $NNODES \
    --node_rank $NODE_RANK \
    --master_addr $MASTER_ADDR \
    --master_port $MASTER_PORT
"

PARALLEL_ARGS="
    --tensor-model-parallel-size ${TP} \
    --pipeline-model-parallel-size ${PP} \
    --num-layers-per-virtual-pipeline-stage 5 \
    --sequence-parallel \
    --micro-batch-size 1 \
    --global-batch-size 1024 \

    --bf16 \
"

MODEL_ARGS="
    --use-mcore-models \
    --num-layers 80 \
    --hidden-size 8192 \
    --ffn-hidden-size 28672 \
    --num-attention-heads 64 \
    --group-query-attention \
    --num-query-groups 8 \
    --seq-length 4096 \
    --max-position-embeddings 4096 \
    --tokenizer-type Llama2Tokenizer \
    --tokenizer-model ${TOKENIZER_MODEL} \
    --make-vocab-size-divisible-by 1 \
    --untie-embeddings-and-output-weights \
    --position-embedding-type rope \
    --normalization RMSNorm \
    --swiglu \
    --disable-bias-linear \
    --attention-dropout 0.0 \
    --hidden-dropout 0.0 \
    --init-method-std 0.01
"

KERNEL_ARGS="
    --use-fused-swiglu \
    --use-fused-rotary-pos-emb \
    --use-fused-rmsnorm \
    --use-flash-attn \
    --no-masked-softmax-fusion \
    --attention-softmax-in-fp32 \
    --no-gradient-accumulation-fusion
"

TRAIN_ARGS="
    --lr 1.0e-6 \
    --min-lr 1.0e-7 \
    --lr-decay-style cosine \
    --lr-warmup-fraction 0.01 \
    --train-iters 2000 \
    --weight-decay 0.1 \
    --clip-grad 1.0 \
    --adam-beta1 0.9 \
    --adam-beta2 0.95 \
    --adam-eps 1e-5 \
    --initial-loss-scale 4096.0 \
    --no-load-optim \
    --no-load-rng
"

DATA_ARGS="
    --data-path $DATA_PATH \
    --split 949,50,1
"

OUTPUT_ARGS="
    --log-interval 1 \
    --save-interval 2000 \
    --eval-interval 1000 \
    --eval-iters 10 \
"

torchrun $DISTRIBUTED_ARGS pretrain_gpt.py \
    $PARALLEL_ARGS $MODEL_ARGS $KERNEL_ARGS $TRAIN_ARGS $DATA_ARGS $OUTPUT_ARGS \
    --distributed-backend nccl \
    --load ${CKPT_LOAD_DIR} \
    --save ${CKPT_SAVE_DIR} \
    | tee logs/train_llama2_70b_mcore.log
