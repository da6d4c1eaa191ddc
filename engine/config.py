"""Typed configuration of every stage: the single source of truth for settings.

Each component has one dataclass; the string under each field documents it (shown by
`videorft config`). Recipes in recipes/<name>/<stage>.yaml fill these in, command-line
`section.field=value` overrides come last, and unknown keys are rejected with a hint.
Defaults follow the released VideoRFT recipe for Qwen2.5-VL-7B where the method fixes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from videorft.engine.config_loader import ConfigError, apply_overrides, from_dict, load_yaml
from videorft.loaders.config import DataConfig, SynthConfig, VideoConfig
from videorft.loaders.family import FamilyName

Device = Literal["auto", "cpu", "cuda"]


@dataclass(kw_only=True)
class RunSection:
    name: str = "run"
    """Human-readable name of the run, used in logs."""
    output_dir: str = "runs/default"
    """Run directory: config.yaml, backends.json, run.log, metrics.jsonl, TensorBoard events, checkpoints."""
    seed: int = 0
    """Seed for Python, NumPy and torch (each rank adds its rank)."""
    device: Device = "auto"
    """Where to compute: "auto" picks CUDA when present, else CPU."""
    log_every: int = 1
    """Write metrics every this many optimizer steps."""
    progress: bool = True
    """Show progress bars on the console for long loops."""
    tensorboard: bool = True
    """Also write TensorBoard event files next to metrics.jsonl."""
    profile_steps: int = 0
    """Trace this many training steps (after the first) with torch.profiler into <output_dir>/profile/
    (Chrome-trace JSON for Perfetto or TensorBoard), the step's phases labelled; 0: off."""


@dataclass(kw_only=True)
class TinyModelConfig:
    family: FamilyName = "qwen2_5_vl"
    """Model class to build with random weights (real transformers classes, tiny sizes)."""
    tokenizer: Literal["bpe", "qwen"] = "bpe"
    """"bpe": a small byte-level BPE trained offline (fast); "qwen": the real 151,643-token Qwen2 vocabulary."""
    hidden_size: int = 64
    """Width of the language model."""
    num_layers: int = 2
    """Decoder layers of the language model."""
    num_heads: int = 4
    """Attention heads of the language model."""
    num_kv_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    intermediate_size: int = 128
    """MLP width of the language model."""
    vision_depth: int = 2
    """Blocks of the vision tower."""
    vision_hidden_size: int = 32
    """Width of the vision tower."""


@dataclass(kw_only=True)
class ModelConfig:
    source: Literal["pretrained", "tiny"] = "pretrained"
    """"pretrained": load `path` (HF save_pretrained layout); "tiny": build a random tiny model offline."""
    path: str = ""
    """Directory of a saved model and its tokenizer (used when source is "pretrained")."""
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    """Shape of the tiny model (used when source is "tiny")."""
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    """Parameter and compute dtype of the policy."""
    attention: Literal["auto", "sdpa", "eager", "flash_attention_2", "videorft_varlen"] = "auto"
    """Attention implementation: "auto" is flash_attention_2 on CUDA when installed, else sdpa;
    "videorft_varlen" is the engine's packed-sequence attention (flash-attn varlen on CUDA,
    per-sequence SDPA elsewhere) for the language model and the vision tower."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    liger_kernels: bool = False
    """Run the language model's RMSNorm and SwiGLU MLP on Liger-Kernel's fused Triton kernels (module
    instances swapped at load time, the same parameters); for CUDA runs."""


@dataclass(kw_only=True)
class KernelConfig:
    backend: Literal["auto", "triton", "torch", "reference"] = "auto"
    """Fused lm_head + log-prob + loss: "auto" is triton on CUDA, torch elsewhere (triton on a CPU
    only under TRITON_INTERPRET=1); block sizes are the kernels' own defaults."""


@dataclass(kw_only=True)
class RolloutConfig:
    backend: Literal["auto", "hf", "vllm"] = "auto"
    """Generation engine: "auto" is colocated vLLM on CUDA when installed, else HF generate."""
    group_size: int = 8
    """Completions sampled per prompt (G)."""
    temperature: float = 1.0
    """Sampling temperature of rollouts (also divides logits in the loss)."""
    top_p: float = 0.95
    """Nucleus sampling threshold of rollouts."""
    top_k: int = 0
    """Top-k cut of rollouts; 0 disables it (vLLM's default; HF generate's own default would be 50)."""
    max_new_tokens: int = 1024
    """Longest completion."""
    min_new_tokens: int = 0
    """Shortest completion (the end-of-turn token is held back until then); 0 lets the model stop anywhere."""
    prefill_once: bool = True
    """HF generate: run each prompt through the model once and share its cache with the G completions
    (exactly G separate prefills' result; vLLM shares prompts through its prefix cache)."""
    vllm_gpu_memory_utilization: float = 0.35
    """Share of GPU memory the colocated vLLM engine may take."""
    vllm_sleep: bool = True
    """Put vLLM to sleep during the update phase (level 2: KV cache and weights discarded; the next
    weight sync refills them). Not supported by vLLM's CPU build."""
    vllm_tensor_parallel_size: int = 1
    """GPUs per vLLM engine; consecutive ranks share one engine and run the same requests (must
    divide the number of ranks)."""
    vllm_max_model_len: Optional[int] = None
    """Longest prompt + completion vLLM accepts, in tokens. None: the vision tokens the video
    settings allow (max frames and pixels, image pixels) + 1024 text tokens + max_new_tokens
    (3072 for the 7B GRPO recipe); 32768 when frames keep their native resolution or the stage
    does not hand its video settings to the rollout engine."""


@dataclass(kw_only=True)
class OptimConfig:
    lr: float = 1e-6
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.0
    """Decoupled weight decay (on weight matrices; never on biases and normalisation weights)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    scheduler: Literal["constant", "linear", "cosine"] = "linear"
    """Learning-rate schedule after warm-up."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    schedule_steps: Optional[int] = None
    """Steps the decay spans (None: the run's own steps). The released GRPO run decayed its cosine
    over a whole epoch of the RL pool and stopped after ~1K steps, so its learning rate stayed ~constant."""
    max_grad_norm: float = 5.0
    """Gradient clipping threshold (0 disables)."""


@dataclass(kw_only=True)
class DistributedConfig:
    zero_stage: Literal[0, 1, 2, 3] = 0
    """DeepSpeed ZeRO stage; 0 trains without DeepSpeed in a single process."""
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    """Process-group backend: "auto" is nccl on CUDA, gloo on CPU."""
    offload_optimizer: bool = False
    """ZeRO-Offload of optimizer states to CPU memory."""


@dataclass(kw_only=True)
class SFTConfig:
    epochs: int = 1
    """Passes over the chain-of-thought data."""
    max_steps: Optional[int] = None
    """Stop after this many optimizer steps (None: run the epochs)."""
    batch_size: int = 1
    """Sequences per device per micro-batch."""
    grad_accum: int = 2
    """Micro-batches per optimizer step."""
    loss_on: Literal["response", "all"] = "response"
    """Train on the response only, or on the whole sequence as the released code did."""
    packing: bool = False
    """Pack several samples into one row (varlen attention on CUDA)."""
    max_length: Optional[int] = None
    """Drop samples longer than this many tokens (None: keep all)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    save_every: int = 5000
    """Checkpoint every this many optimizer steps (a final one is always written)."""


@dataclass(kw_only=True)
class GRPOConfig:
    steps: int = 1000
    """Optimizer steps (the paper stops after about 1K)."""
    prompts_per_step: int = 1
    """Prompts per device per step; each gets `rollout.group_size` completions."""
    beta: float = 0.04
    """Weight of the k3 KL penalty against the frozen reference (0 drops the reference)."""
    clip_low: float = 0.2
    """Lower PPO clip range of the importance ratio."""
    clip_high: float = 0.2
    """Upper PPO clip range of the importance ratio."""
    loss_agg: Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"] = "seq-mean-token-mean"
    """Loss aggregation: GRPO/VideoRFT; DAPO's token mean over the step's tokens of all ranks; Dr. GRPO's
    sum over B x rollout.max_new_tokens."""
    importance_sampling_level: Literal["token", "sequence"] = "token"
    """Importance ratio per token, or one per sequence (GSPO: exp of the mean token log-ratio)."""
    policy_loss: Literal["ppo", "cispo"] = "ppo"
    """PPO's clipped surrogate, or CISPO (the truncated, detached importance weight times the log-prob)."""
    delta: Optional[float] = None
    """Two-sided clipping: the unclipped ratio is capped at delta (>= 1 + clip_high); None: off."""
    rollout_is: Optional[Literal["tis", "mis"]] = None
    """Correct the mismatch between the sampler's and the trainer's probabilities (vLLM's kernels differ
    from training's): "tis" weights by min(ratio, threshold), "mis" masks tokens or sequences whose ratio
    leaves [1/threshold, threshold]; None: off."""
    rollout_is_level: Literal["token", "sequence"] = "token"
    """The sampler correction per token, or one value per sequence (product of its token ratios)."""
    rollout_is_threshold: float = 2.0
    """Truncation bound of "tis"; band [1/threshold, threshold] of "mis"."""
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: draw more prompts until the step has prompts_per_step groups whose rewards
    are not all equal (groups with equal rewards carry no advantage), at most dynamic_sampling_draws draws."""
    dynamic_sampling_draws: int = 4
    """Most prompt batches one step may draw with dynamic_sampling (then it trains on what it has)."""
    inner_updates: int = 1
    """Policy updates per batch of rollouts; >1 uses old log-probs and clipping."""
    micro_rows: int = 0
    """Completions per forward/backward pass (gradient accumulation); 0 runs the whole step at once.
    With prefix_sharing it is rounded up to whole groups of rollout.group_size."""
    prefix_sharing: bool = True
    """Run each prompt once per group in the log-prob and update passes: its G completions attend to
    that one copy (exactly the per-row result, G-fold less prompt work). The language model then uses
    the engine's varlen attention (flash-attn varlen on CUDA, SDPA per segment elsewhere)."""
    freeze_vision: bool = False
    """Do not train the vision tower: each prompt's media is encoded once per step, without gradient,
    and the features serve the HF rollout, the old and reference log-probs and the update (the
    reference shares the frozen tower's weights). vLLM rollouts encode with vLLM's own copy."""
    adv_eps: float = 1e-4
    """Added to the group std before dividing."""
    adv_std: Literal["unbiased", "biased", "none"] = "unbiased"
    """Group std convention, or "none" to only subtract the group mean (Dr.GRPO)."""
    ref_offload: bool = False
    """Keep the frozen reference model in CPU memory between uses."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(weight_decay=0.01, scheduler="cosine"))
    """Optimizer and schedule."""
    save_every: int = 100
    """Checkpoint every this many steps (a final one is always written)."""
    max_bad_steps: int = 3
    """Consecutive non-finite losses after which the run stops."""


@dataclass(kw_only=True)
class SemanticRewardConfig:
    encoder_path: str = ""
    """SigLIP checkpoint directory (save_pretrained layout) used for the semantic reward."""
    weight: float = 2.0
    """Scale w in min(1, w * max(cos, 0))."""
    pooling: Literal["mean-embedding", "per-frame"] = "mean-embedding"
    """Cosine against the mean frame embedding (paper) or mean of per-frame rewards (released code)."""
    num_frames: int = 16
    """Frames of the clip that the encoder sees."""
    gate_on_accuracy: bool = True
    """Zero the semantic reward where accuracy <= 0."""


@dataclass(kw_only=True)
class LengthBonusConfig:
    enabled: bool = True
    """Add the length bonus of the released recipe."""
    bonus: float = 0.2
    """Added to correct completions whose length lies in [min_tokens, max_tokens]."""
    min_tokens: int = 320
    """Shortest completion that earns the bonus."""
    max_tokens: int = 512
    """Longest completion that earns the bonus."""
    correct_threshold: float = 0.1
    """Accuracy above which a completion counts as correct."""
    min_correct: int = 2
    """Correct completions needed in the group before any bonus is given."""


@dataclass(kw_only=True)
class RewardConfig:
    functions: list[Literal["accuracy", "format", "semantic"]] = field(
        default_factory=lambda: ["accuracy", "format", "semantic"])
    """Reward functions summed into the total, in order."""
    semantic: SemanticRewardConfig = field(default_factory=SemanticRewardConfig)
    """Semantic-consistency reward (SigLIP)."""
    length_bonus: LengthBonusConfig = field(default_factory=LengthBonusConfig)
    """Length bonus for correct completions."""


BenchmarkName = Literal["vsibench", "videommmu", "mmvu", "mvbench", "tempcompass", "videomme"]


@dataclass(kw_only=True)
class EvalConfig:
    benchmark: Literal["records", "vsibench", "videommmu", "mmvu", "mvbench", "tempcompass", "videomme"] = "records"
    """What data.eval_file holds. "records": the plain schema, scored per problem type and broken down
    by data source. The six paper benchmarks: the Video-R1 / VideoRFT release file eval_<name>.json
    (data.eval_file may name the folder holding it), scored as the paper reports it (metrics.score)
    with the benchmark's own breakdown; `videorft convert-benchmark` writes that layout from the
    benchmarks' own releases."""
    predictions: str = ""
    """A JSONL file of {"problem_id", "completion"} rows to score instead of generating (no model is
    loaded), e.g. an earlier run's predictions.jsonl after a change of scoring rules."""
    temperature: float = 0.1
    """Sampling temperature of vLLM decoding (VideoRFT evaluates at 0.1; 0 decodes greedily). HF generate
    always decodes greedily, which near-greedy sampling with top_p 0.001 agrees with."""
    top_p: float = 0.001
    """Nucleus threshold of vLLM decoding (VideoRFT: 0.001, which keeps only the most likely token)."""
    max_new_tokens: int = 1024
    """Longest answer."""
    lenient_choice: bool = False
    """Extract the option letter from answers like "(B)" or "B. red" instead of exact match."""
    released_mra: bool = False
    """Score numerical VSI-Bench answers with the released evaluation script's float32 MRA instead of the
    official rule (it moves VSI-Bench by about half a point); eval.json and reports say when it is on."""
    batch_size: int = 8
    """Prompts per generate call: HF generate pads them into one batch; vLLM schedules a call's prompts
    with continuous batching, so give it a few hundred."""


@dataclass(kw_only=True)
class ConvertConfig:
    benchmark: Optional[BenchmarkName] = None
    """The benchmark whose own release (the layout lmms-eval reads) is converted to the records layout:
    vsibench, videommmu, mmvu, mvbench, tempcompass or videomme."""
    source: str = ""
    """The downloaded annotations: a .json, .jsonl or .parquet file, or a folder searched for them (MVBench's
    json/<task>.json files, VideoMMMU's Perception/Comprehension/Adaptation splits)."""
    output_file: str = ""
    """The records file to write (a JSON array, as the Video-R1 release; .jsonl writes JSON lines)."""
    video_dir: str = ""
    """Folder of the benchmark's videos relative to data.media_root, written into each record's path
    ("./<video_dir>/<video>"), e.g. "VideoMME/data"."""
    check_media: bool = False
    """Check that every converted record's video exists under data.media_root; missing ones are counted
    and the first few named."""


@dataclass(kw_only=True)
class ReportConfig:
    evaluations: dict[str, str] = field(default_factory=dict)
    """Label -> evaluation run directory (holding eval.json), in table order, e.g. base/sft/grpo; for
    benchmark evaluations the label names a checkpoint and its folder may instead hold one evaluation
    per benchmark in its subfolders (e.g. runs/qwen2_5_vl_7b/eval/{vsibench,mvbench,...})."""
    output_file: str = "runs/results.json"
    """Where the combined JSON is written ({"stages": ...} for record evaluations, "checkpoints" and
    "paper" for benchmark ones); benchmark reports also draw a grouped bar chart beside it (.png)."""
    columns: list[str] = field(default_factory=lambda: ["accuracy", "format", "semantic"])
    """Metrics shown in the printed table of record evaluations (all metrics go to the JSON)."""
    paper_rows: list[str] = field(default_factory=lambda: ["Qwen2.5-VL-7B", "Video-R1-7B", "VideoRFT-7B"])
    """Rows of engine/data/paper_results.yaml printed beside benchmark evaluations."""
    curation: str = ""
    """stats.json of the curation that made the SFT data; its table is printed first ("" : none)."""


@dataclass(kw_only=True)
class EncoderTrainConfig:
    world_dir: str = ""
    """Synthetic world whose frame/caption pairs train the encoder ("" uses synth.output_dir)."""
    train_split: str = "train"
    """Split of the world used for training."""
    eval_split: str = "test"
    """Held-out split on which matching and mismatched captions are compared after training."""
    frames_per_video: int = 8
    """Frames sampled from each clip of the world; each gets the caption of what it shows."""
    image_size: int = 48
    """Side of the square frames the vision tower sees (the saved image processor resizes to it)."""
    patch_size: int = 8
    """Side of a vision patch; (image_size / patch_size)^2 patches per frame."""
    hidden_size: int = 64
    """Width of both towers and of the shared embedding."""
    num_layers: int = 2
    """Transformer blocks in each tower."""
    num_heads: int = 4
    """Attention heads in each tower."""
    intermediate_size: int = 128
    """MLP width in each tower."""
    vocab_size: int = 512
    """Size of the lower-casing byte-level BPE trained on the project corpus and the captions."""
    max_text_tokens: int = 64
    """Text length limit (SigLIP's 64 tokens); texts are padded or cut to it."""
    steps: int = 600
    """Optimizer steps of contrastive training."""
    batch_size: int = 64
    """Frame/caption pairs per step (every other pair in the batch is a negative)."""
    lr: float = 1e-3
    """Peak AdamW learning rate (linear warm-up, then cosine decay to 10%)."""
    warmup_steps: int = 20
    """Linear warm-up steps."""
    weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""


@dataclass(kw_only=True)
class CurateModelConfig:
    backend: Literal["openai", "vllm", "hf", "world"] = "openai"
    """Who answers this stage's requests: "openai" any OpenAI-compatible chat server (vLLM, SGLang,
    a hosted API); "vllm" offline vLLM in this process on the node's GPUs; "hf" in-process transformers
    (the CPU path); "world" the synthetic world's oracle, read from its scene graphs."""
    model: str = ""
    """Model name sent to the server ("openai"), or the checkpoint to load ("vllm", "hf")."""
    base_url: list[str] = field(default_factory=list)
    """OpenAI-compatible endpoints, e.g. ["http://10.0.0.5:8000/v1"]; several are load-balanced."""
    api_key_env: str = ""
    """Name of the environment variable holding the API key ("" sends none); the key itself never
    appears in configs, logs, caches or outputs."""
    concurrency: int = 8
    """Requests in flight at once: concurrent HTTP requests, or the batch of an in-process backend."""
    timeout_s: float = 300.0
    """Seconds one HTTP request may take before it is abandoned and retried."""
    max_retries: int = 6
    """Retries of one request after a 429, a 5xx, a timeout, a dropped connection or a malformed body."""
    retry_base_s: float = 1.0
    """First backoff delay; each retry doubles it (capped at 60 s) and adds jitter. A Retry-After
    header on a 429/503 is honoured when it asks for longer."""
    temperature: float = 0.6
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling threshold."""
    max_tokens: int = 4096
    """Longest response, in tokens."""
    seed: Optional[int] = None
    """Sampling seed sent with each request (None: the server's own randomness)."""
    fps: float = 1.0
    """Frames per second sampled from the video for this stage (stages that see the video)."""
    max_frames: int = 32
    """Most frames sent for one video; longer videos are sampled more sparsely."""
    max_pixels: Optional[int] = 448 * 448
    """Pixel ceiling per frame (frames are resized within it); None keeps the native size."""
    video_as: Literal["frames", "video"] = "frames"
    """How the video reaches an "openai" server: base64 JPEG image parts at `fps`, or one video part
    holding the file (servers that decode video themselves, e.g. vLLM with Qwen2.5-VL)."""
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    """Weights dtype of the in-process backends ("vllm", "hf")."""
    tensor_parallel_size: int = 1
    """GPUs one "vllm" engine spans."""
    gpu_memory_utilization: float = 0.9
    """Share of GPU memory the "vllm" engine may take."""
    price_in_per_mtok: float = 0.0
    """Price of one million prompt tokens (0: no cost is reported)."""
    price_out_per_mtok: float = 0.0
    """Price of one million completion tokens."""


@dataclass(kw_only=True)
class CurateWorldConfig:
    mistake_rate: float = 0.2
    """Share of chains in which the world's text-only reasoner misreads something: half of them
    misplace a shape (a detail the reviser fixes), half pick a wrong answer (the filter drops them)."""
    leak_rate: float = 0.15
    """Share of chains in which the reasoner betrays its text source ("the frame-level metadata",
    clock timestamps), which the reviser rewrites and the filter otherwise drops."""
    seed: int = 0
    """Seed of those draws (per sample, so a rerun draws the same)."""
    style: Literal["full", "compact"] = "full"
    """Chain wording: five full sentences, or five steps of a few words each (cheap to generate on a CPU)."""


@dataclass(kw_only=True)
class CurateFilterConfig:
    min_score: float = 0.6
    """OCR and regression chains are kept when the accuracy reward of their answer reaches this
    (multiple choice and numerical need exactly 1)."""
    encoder_path: str = ""
    """SigLIP checkpoint whose text tower compares free-form answers with the reference (the paper
    used CLIP); needed only when the pool holds free-form questions."""
    semantic_threshold: float = 0.8
    """Free-form chains are kept when the cosine between answer and reference embeddings reaches this."""
    min_words: int = 10
    """Fewest words in the reasoning."""
    max_words: int = 1500
    """Most words in the reasoning."""
    leak_phrases: list[str] = field(default_factory=lambda: [
        "caption", "metadata", "frame-level", "key elements", "key_elements"])
    """Phrases that betray a text source; a chain containing one (any case) is dropped."""


@dataclass(kw_only=True)
class CurateConfig:
    input_file: str = ""
    """Question pool (JSON or JSONL records, VideoRFT schema); media paths resolve under data.media_root."""
    output_dir: str = "runs/curate"
    """Where <stage>.jsonl, cot.jsonl, stats.json and the request cache are written."""
    stages: list[str] = field(default_factory=lambda: ["represent", "reason", "revise", "filter"])
    """Stages to run, in order; leave out "revise" for the paper's "without revision" ablation."""
    shard: str = ""
    """ "i/n" curates the i-th of n deterministic slices of the pool (0-based) into
    output_dir/shards/i-of-n; `videorft curate --merge` joins the n slices afterwards."""
    cache_dir: str = ""
    """On-disk request cache ("" : output_dir/cache); answered requests are never sent twice."""
    max_samples: Optional[int] = None
    """Curate at most this many questions of the pool (None: all)."""
    represent: CurateModelConfig = field(default_factory=lambda: CurateModelConfig(
        temperature=0.2, max_tokens=8192))
    """Stage (a): the structured video representation (the paper: GPT-4o-mini at 1 FPS)."""
    reason: CurateModelConfig = field(default_factory=lambda: CurateModelConfig(max_tokens=8192))
    """Stage (b): the text-only cognitive chain of thought (the paper: DeepSeek-R1)."""
    revise: CurateModelConfig = field(default_factory=lambda: CurateModelConfig(
        temperature=0.2, fps=2.0, max_frames=32, max_pixels=256 * 28 * 28))
    """Stage (c): revision against the video (the paper: Qwen2.5-VL)."""
    world: CurateWorldConfig = field(default_factory=CurateWorldConfig)
    """The synthetic world's reasoner, when a stage's backend is "world"."""
    filter: CurateFilterConfig = field(default_factory=CurateFilterConfig)
    """Stage (d): which chains become SFT data."""


@dataclass(kw_only=True)
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    """Run directory, seed, device, logging."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Policy model."""
    video: VideoConfig = field(default_factory=VideoConfig)
    """Video decoding and Qwen-VL preprocessing."""
    data: DataConfig = field(default_factory=DataConfig)
    """Datasets and prompts."""
    kernels: KernelConfig = field(default_factory=KernelConfig)
    """Fused loss kernels."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Rollout generation."""
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """Multi-process training."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Supervised fine-tuning on chains of thought."""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    """GRPO reinforcement learning."""
    rewards: RewardConfig = field(default_factory=RewardConfig)
    """Reward functions."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation."""
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    """Conversion of a benchmark's own release into the records layout."""
    synth: SynthConfig = field(default_factory=SynthConfig)
    """Synthetic video world."""
    report: ReportConfig = field(default_factory=ReportConfig)
    """Summary of a pipeline's evaluations."""
    encoder: EncoderTrainConfig = field(default_factory=EncoderTrainConfig)
    """Training of the tiny SigLIP encoder behind the semantic reward on CPU."""
    curate: CurateConfig = field(default_factory=CurateConfig)
    """Chain-of-thought curation: representation, reasoning, revision, filtering."""


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """RunConfig from a YAML recipe (or defaults when `path` is None) plus `a.b=value` overrides."""
    data = load_yaml(path) if path is not None else {}
    try:
        return from_dict(RunConfig, apply_overrides(data, overrides))
    except ConfigError as err:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{err}") from None

