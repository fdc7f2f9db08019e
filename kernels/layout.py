"""Index layout of the packed arrays shared by the packing step, the kernels and the
reference model. Units are SI (bytes, FLOP, seconds, bytes/s) unless a name says otherwise.
"""

# ---- model vector (float64) ---------------------------------------------------------------
M_LAYERS = 0          # transformer layers
M_HIDDEN = 1
M_HEADS = 2
M_KV_HEADS = 3
M_DQK = 4             # query/key head dim (MLA: nope + rope)
M_DV = 5              # value head dim
M_FFN = 6             # dense-layer FFN width
M_ACT = 7             # ACT_* code
M_VOCAB = 8
M_TIED = 9            # 1 if input embedding and output layer share weights
M_MLA = 10            # 1 if multi-head latent attention
M_Q_LORA = 11
M_KV_LORA = 12
M_ROPE = 13           # MLA decoupled rope dim
M_N_MOE = 14          # number of MoE layers
M_N_DENSE = 15        # number of dense layers
M_EXPERTS = 16
M_TOPK = 17
M_SHARED = 18         # shared experts per MoE layer
M_FE = 19             # routed expert FFN width
M_FS = 20             # shared expert FFN width
M_WINDOW = 21         # sliding window (0 = none)
M_FRAC_SLIDING = 22   # fraction of layers that use the sliding window
M_GROUPS = 24         # MoE routing groups (DeepSeek-V3 n_group; 0 = none)
M_GROUP_LIMIT = 25    # groups a token may route to (topk_group; 0 = no limit)
M_SIZE = 26

ACT_GELU = 0
ACT_SWIGLU = 1
ACT_RELU2 = 2

# ---- hardware vector (float64), per RANK (a die where frameworks run one process per die) --
H_PEAK_BF16 = 0       # FLOP/s, 16-bit matmul peak (bf16, or fp16 where bf16 is absent)
H_PEAK_FP16 = 1
H_PEAK_FP8 = 2
H_PEAK_FP4 = 3
H_HBM_BYTES = 4       # usable capacity per rank (after reserve)
H_HBM_BW = 5          # achieved bytes/s (peak x efficiency)
H_BW_DIE = 6          # achieved bytes/s per rank per direction, on-package die-to-die
H_BW_UP = 7           # achieved bytes/s per rank per direction, scale-up domain
H_BW_OUT = 8          # achieved bytes/s per rank per direction, scale-out NIC
H_LAT_DIE = 9         # seconds per collective step
H_LAT_UP = 10
H_LAT_OUT = 11
H_RANKS_PKG = 12      # ranks per package
H_DOMAIN = 13         # ranks per scale-up domain
H_NODE = 14           # ranks per node (for the straggler model)
H_DOMAIN_PKGS = 15    # packages per scale-up domain
H_KERNEL_S = 16       # seconds of fixed overhead per kernel launch
H_ATT_FWD = 17        # fraction of 16-bit peak reached by fused attention forward
H_ATT_BWD = 18
H_LAT_SW = 19         # seconds of software cost per collective step (NCCL / HCCL), every tier
H_ATT_S0 = 20         # mean keys per query at which fused attention reaches half its plateau
H_STRAGGLER_CV = 21
H_LP_FP8 = 22         # multiplier on the GEMM efficiency curve for fp8
H_LP_FP4 = 23
H_MOE_TOKEN_S = 24    # serving only, being replaced: seconds per routed token copy per MoE layer
H_TP_OVL_EFF = 25     # share of a GEMM's time a fused / pipelined TP collective can hide behind
H_GEMM_D0 = 26        # narrow-dimension constant: efficiency x w / (w + D0), w = min(n, k)
H_PEAK_INT8 = 27      # OP/s, int8 matmul peak
H_STEP_S = 28         # fixed seconds per inference engine step (scheduling, sampling, launch)
H_KV_FRACTION = 29    # share of free HBM the serving engine gives the KV cache
H_HBM_TOTAL = 30      # bytes per rank before the reserve (capacity)
H_NCURVE = 31         # number of GEMM-efficiency breakpoints used
# 32-47: training-side hardware terms
H_BW_PAIR_UP = 32     # achieved bytes/s per direction between two packages of the scale-up domain
H_TOPO = 33           # TOPO_* code of the scale-up domain
H_TORUS_DIMS = 34     # dimensions of a torus domain (TPU)
H_ATT3_FWD = 35       # fraction of 16-bit peak reached by FlashAttention-3 / cuDNN class kernels
H_ATT3_BWD = 36
H_LP_INT8 = 37        # multiplier on the GEMM efficiency curve for int8
H_GG_D0 = 38          # grouped (expert) GEMMs: narrow-dimension constant, x w / (w + D0)
H_GG_FACTOR = 39      # grouped (expert) GEMMs: multiplier on the GEMM curve
H_GG_MTILE = 40       # grouped (expert) GEMMs: M-block each expert's token rows are padded to
# 48-63: serving-side hardware terms (efficiency.yaml serve_* fields; basis there)
H_SV_LP_8 = 48        # multiplier on the class GEMM curve for 8-bit serving GEMMs (fp8, int8)
H_SV_WS_16 = 49       # bytes/s per rank decode GEMMs reach streaming 16-bit weights
H_SV_WS_8 = 50        # ... 8-bit weights (fp8, int8 W8A8)
H_SV_WS_4 = 51        # ... 4-bit weights (fp4, int4 W4A16 / W4A8: dequant in the kernel)
H_SV_QUANT_S = 52     # s per low-precision GEMM for an unfused activation quantisation kernel
H_SV_KV_BW = 53       # bytes/s per rank decode attention reaches reading the paged KV cache
H_SV_LP_16 = 54       # multiplier on the class GEMM curve for 16-bit serving GEMMs
H_SV_ATT_DEC = 55     # fraction of 16-bit peak reached by compute-bound decode attention
H_SV_AR_CUSTOM_S = 56 # s, latency of a one-shot all-reduce kernel inside the scale-up domain
H_SV_AR_LIB_S = 57    # s, base latency of a library (NCCL / HCCL) all-reduce in the domain
H_SV_COLL_BW = 58     # bytes/s per rank per direction reached by collectives at serving sizes
H_SV_NVLS = 59        # 1 if the scale-up switch reduces in the network (NVLink SHARP)
H_SV_A2A_S = 60       # s, latency of a low-latency MoE dispatch or combine kernel
H_SV_KERNEL_S = 61    # s, device-side cost of one kernel in a captured graph (tiny-kernel floor)
H_SV_AR_STEP_S = 62   # s, latency a library all-reduce adds per further rank
H_SV_LP_4 = 63        # multiplier on the class GEMM curve for fp4 serving GEMMs (W4A4)
H_CURVE_X = 64        # log10(GFLOP) breakpoints, H_CURVE_MAX entries
H_CURVE_MAX = 8
H_CURVE_Y = H_CURVE_X + H_CURVE_MAX
H_SIZE = H_CURVE_Y + H_CURVE_MAX

# ---- stack vector (float64): software features of the training framework -----------------
# (hwspecs/stacks.yaml; feature flags are 0/1, codes as named)
S_SP = 0              # sequence parallelism (TP traffic as RS/AG, activations split over TP)
S_TP_OVERLAP = 1      # TP collectives pipelined with the adjacent GEMMs
S_GRAD_OVERLAP = 2    # DP gradient reduction overlapped with backward
S_PARAM_OVERLAP = 3   # distributed-optimizer parameter all-gather overlapped with forward
S_P2P_OVERLAP = 4     # pipeline send/recv overlapped with compute
S_DISP = 5            # DISP_* code: the stack's default MoE token dispatcher
S_GROUPED_GEMM = 6    # experts as one grouped GEMM
S_ATTN = 7            # ATTN_* code
S_FUSED = 8           # fused elementwise kernels
S_ZERO2_PER_MB = 9    # ZeRO-2 reduce-scatters gradients every micro-batch
S_MOE_CV = 10         # coefficient of variation of tokens per expert
S_BUCKET = 11         # DDP bucket size, parameters
S_GRAD_BYTES = 12     # bytes per parameter of the main-gradient buffer
S_HOST_OP = 13        # host (Python + framework + launch) seconds per operator issued
S_GRAPHS = 14         # GRAPHS_* code: which parts run as captured CUDA graphs
S_SEL_ACT = 15        # selective recompute also recomputes the MLP activation function
S_GATHER_BUCKET = 16  # ZeRO-3 / FSDP parameter all-gather bucket, parameters
S_CP_ALLGATHER = 17   # context parallelism all-gathers K,V up front (exposed) instead of a ring
S_ZERO3_REGATHER = 18  # ZeRO-3 gathers parameters again for a recomputed layer's forward
S_A2A_SHARE = 19     # share of the compute units an overlapped MoE all-to-all occupies
S_SIZE = 20

GRAPHS_NONE = 0
GRAPHS_DENSE = 1      # attention and dense blocks captured (MoE dispatch stays eager)
GRAPHS_FULL = 2       # whole layers captured

ATTN_UNFUSED = 0
ATTN_FLASH2 = 1
ATTN_FLASH3 = 2

TOPO_SWITCHED = 0     # switched / Clos: every member reaches every other at its full rate
TOPO_MESH = 1         # full mesh of point-to-point links (HCCS): one link per pair
TOPO_TORUS = 2        # torus (TPU ICI): all-to-all limited by the bisection

# ---- plan matrix (int64), one row per plan ------------------------------------------------
P_TP = 0
P_PP = 1
P_DP = 2
P_CP = 3
P_EP = 4
P_VPP = 5
P_MBS = 6
P_GBS = 7
P_SEQ = 8
P_RECOMPUTE = 9       # RC_* code
P_ZERO = 10           # 0..3
P_PREC = 11           # PREC_* code
P_RC_Q = 12           # with RC_FULL: quarters (1-4) of each rank's layers recomputed; 0 = all
P_EPO = 13            # 1 = MoE all-to-all overlapped with another micro-batch's compute
P_ETP = 14            # tensor-parallel degree of the expert layers; 0 = the default rule (kernels.training.expert_tp)
P_DISP = 15           # DISP_* code of the MoE token dispatcher; 0 = the stack's default
P_SIZE = 16

DISP_ALLTOALL = 1     # every routed copy to the rank holding its expert (Megatron alltoall)
DISP_ALLGATHER = 2    # hidden states all-gathered over the EP x ETP group, reduce-scattered back
DISP_DEEPEP = 3       # one copy per remote node, forwarded inside it (DeepEP / flex dispatcher)

RC_NONE = 0
RC_SELECTIVE = 1
RC_FULL = 2

PREC_BF16 = 0
PREC_FP16 = 1
PREC_FP8 = 2
PREC_FP4 = 3

# ---- training output matrix (float64), one row per plan -----------------------------------
O_STEP = 0            # step time, s (= sum of the O_T_* parts)
O_T_COMPUTE = 1
O_T_RECOMPUTE = 2
O_T_TP = 3
O_T_CP = 4
O_T_EP = 5
O_T_PP = 6
O_T_DP = 7
O_T_BUBBLE = 8
O_T_OPTIMIZER = 9
O_T_STRAGGLER = 10
O_MEM_WEIGHTS = 11    # bytes per rank, on the most loaded rank
O_MEM_GRADS = 12
O_MEM_OPT = 13
O_MEM_ACT = 14
O_MEM_TOTAL = 15      # weights + grads + optimizer + activations (reserve already taken off)
O_TOKENS_PER_S = 16   # whole job
O_MODEL_FLOPS_TOK = 17  # model FLOPs per token (6N + attention, PaLM convention)
O_HW_FLOPS_TOK = 18   # executed FLOPs per token (causal attention, recompute included)
O_SIZE = 19

O_TIME_PARTS = (O_T_COMPUTE, O_T_RECOMPUTE, O_T_TP, O_T_CP, O_T_EP, O_T_PP, O_T_DP,
                O_T_BUBBLE, O_T_OPTIMIZER, O_T_STRAGGLER)

# status codes
ST_OK = 0
ST_OOM = 1
ST_NO_PRECISION = 2   # chip has no peak for the requested precision
ST_NO_LINK = 3        # the plan needs a link tier whose bandwidth is unknown

# ---- inference plan matrix (int64) ----------------------------------------------------------
I_TP = 0
I_PP = 1
I_EP = 2
I_DP = 3              # attention data parallel groups inside the replica
I_BATCH = 4           # concurrent sequences per replica
I_IN = 5              # input tokens per request
I_OUT = 6             # output tokens per request
I_WPREC = 7           # WP_* code: weight/activation precision
I_KVPREC = 8          # KV_* code
I_SPEC_X100 = 9       # accepted tokens per decode step x 100 (100 = no speculative decoding)
I_TBO = 10            # 1 = two-batch overlap: MoE all-to-all hidden behind the other half's compute
I_DRAFT = 11          # drafted tokens verified per sequence per decode step (0 = no speculation)
# serving-stack knobs (hwspecs/stacks.yaml `serving:`), constant over one search
I_GRAPHS = 12         # 1 = decode steps replay a captured graph (CUDA graphs, ACL graph, torchair)
I_OVERLAP = 13        # 1 = host scheduling of step n+1 overlaps device step n
I_MIXED = 14          # 1 = prefill tokens ride in decode steps (in-flight batching / chunked prefill)
I_CHUNK = 15          # prefill tokens per engine iteration (max_num_tokens / chunked_prefill_size)
I_KV_ADMIT = 16       # KVA_* code: KV reserved per admitted sequence
I_CUSTOM_AR = 17      # 1 = one-shot / two-shot all-reduce kernels exist in the engine
I_HOST_US = 18        # host microseconds per engine step (scheduler, sampling, bookkeeping)
I_HOST_SEQ_NS = 19    # host nanoseconds per running sequence per step
I_KV_FRAC_PM = 20     # KV-cache memory fraction, per mille
I_KV_OF_TOTAL = 21    # 1 = the fraction is of total memory (vLLM, SGLang), 0 = of free memory
I_LOAD_CV_PM = 22     # expert popularity CV across EP ranks after placement (EPLB), per mille
I_A2A_LL = 23         # 1 = decode MoE dispatch/combine with low-latency kernels (DeepEP LL class)
I_FUSED_QUANT = 24    # 1 = activation quantisation fused into the preceding kernel
I_HOST_OP_NS = 25     # host nanoseconds to dispatch one operator without graph capture (eager)
I_A2A_SM_PM = 26      # share of compute units the prefill all-to-all kernels occupy, per mille
I_SIZE = 27

WP_BF16 = 0
WP_FP16 = 1
WP_FP8 = 2
WP_FP4 = 3
WP_INT8 = 4           # W8A8
WP_INT4 = 5           # W4A16 (int4 weights, 16-bit compute)
WP_W4A8 = 6           # int4 weights, int8 compute

KV_BF16 = 0
KV_FP8 = 1
KV_INT8 = 2

KVA_FULL = 0          # reserve input + output tokens at admission (TensorRT-LLM GUARANTEED_NO_EVICT)
KVA_MEAN = 1          # paged blocks on demand: a sequence holds input + output/2 on average

# ---- inference output matrix (float64) -----------------------------------------------------
Q_TTFT = 0            # s: prefill of one request's input (whole replica)
Q_TPOT = 1            # s per output token of a sequence: decode step / accepted tokens
Q_OUT_TOK_S = 2       # output tokens/s of the replica (e2e: prefill amortised in)
Q_IN_TOK_S = 3        # prefill tokens/s of the replica when saturated
Q_MEM_WEIGHTS = 4     # bytes per rank
Q_MEM_KV = 5          # bytes per rank for the batch's KV cache as admitted (Q_SEQ_KV per sequence)
Q_MEM_ACT = 6         # bytes per rank of activation workspace
Q_MEM_TOTAL = 7
Q_KV_CAP_TOKENS = 8   # KV tokens the replica can hold
Q_D_WEIGHTS = 9       # decode: time to stream the weights once per micro-batch (within layers)
Q_D_KV = 10           # decode: time to stream the KV cache (within layers)
Q_D_LAYERS = 11       # decode step parts (sum = TPOT x accepted): per-layer ops
Q_D_COMM = 12         # TP all-reduce / EP all-to-all / PP sends
Q_D_OVERHEAD = 13     # fixed per-step cost
Q_P_COMPUTE = 14      # prefill breakdown, s (one request of I tokens)
Q_P_COMM = 15
Q_P_OVERHEAD = 16
Q_D_ATTN = 17         # decode: attention kernels (within layers)
Q_D_MOE_A2A = 18      # decode: MoE dispatch + combine exposed (within comm)
Q_D_DRAFT = 19        # decode: draft / MTP passes (within layers)
Q_D_PREFILL = 20      # e2e: prefill work per decode step (mixed tokens or separate iterations)
Q_IMBALANCE = 21      # max / mean routed tokens over EP ranks in a decode step
Q_SEQ_KV = 22         # KV tokens one admitted sequence holds under the stack's policy
Q_TPOT_E2E = 23       # s per output token with the prefill work owed per step (e2e; = Q_TPOT
                      #   when no output is generated)
Q_SIZE = 24
