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


@dataclass(kw_only=True)
class TinyModelConfig:
    family: Literal["qwen2_5_vl", "qwen2_vl", "qwen3_vl"] = "qwen2_5_vl"
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


@dataclass(kw_only=True)
class VideoConfig:
    backend: Literal["auto", "pyav", "decord", "opencv", "dali"] = "auto"
    """Decoder: "auto" is DALI on CUDA and the measured fastest installed decoder on CPU."""
    num_frames: Optional[int] = None
    """Exact frame count (rounded to even); None samples `fps` clamped to [min_frames, max_frames]."""
    fps: float = 2.0
    """Sampling rate used when num_frames is None."""
    min_frames: int = 4
    """Lower clamp of the frame count."""
    max_frames: int = 16
    """Upper clamp of the frame count (16 in training, 32 in evaluation)."""
    min_pixels: Optional[int] = 128 * 28 * 28
    """Per-frame pixel floor for smart_resize; None keeps the native resolution."""
    max_pixels: Optional[int] = 128 * 28 * 28
    """Per-frame pixel ceiling for smart_resize (128*28*28 training, 256*28*28 evaluation)."""
    image_min_pixels: int = 4 * 28 * 28
    """Pixel floor for image samples."""
    image_max_pixels: int = 256 * 28 * 28
    """Pixel ceiling for image samples."""
    preprocess: Literal["auto", "torch", "native", "gpu"] = "auto"
    """Resize/normalise/patchify path: "auto" is gpu on CUDA, native when built, else torch."""


@dataclass(kw_only=True)
class DataConfig:
    train_file: str = ""
    """JSON or JSONL records in the VideoRFT / Video-R1 schema for training."""
    eval_file: str = ""
    """Records for evaluation."""
    media_root: str = "."
    """One root for every media path (`./x.mp4` resolves to media_root/x.mp4) for policy and rewards."""
    options: Literal["auto", "append", "never"] = "auto"
    """How options reach the prompt: appended unless the problem already lists them ("auto"), always, never."""
    system_prompt: Literal["default", "r1", "none"] = "default"
    """System message: the model's default, the R1 reasoning prompt (VideoRFT SFT), or none."""
    template: Literal["train", "eval"] = "train"
    """Question template and option layout: VideoRFT's training text or its evaluation text."""
    on_bad_record: Literal["error", "skip"] = "error"
    """A malformed record line stops with file, line and field named, or is skipped and counted."""
    max_samples: Optional[int] = None
    """Use at most this many records (None: all)."""
    num_workers: int = 0
    """DataLoader worker processes that decode and preprocess ahead of the trainer."""
    prefetch: int = 2
    """Batches each worker prepares ahead."""


@dataclass(kw_only=True)
class KernelConfig:
    backend: Literal["auto", "triton", "torch", "reference"] = "auto"
    """Fused lm_head + log-prob + loss: "auto" is triton on CUDA, torch elsewhere."""
    token_chunk: int = 1024
    """Rows per chunk of the torch backend."""
    vocab_chunk: int = 8192
    """Vocabulary columns per chunk of the torch backend."""


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
    vllm_gpu_memory_utilization: float = 0.35
    """Share of GPU memory the colocated vLLM engine may take."""
    vllm_sleep: bool = True
    """Put vLLM to sleep (free its KV cache and weights) during the update phase."""


@dataclass(kw_only=True)
class OptimConfig:
    lr: float = 1e-6
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.0
    """Decoupled weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    scheduler: Literal["constant", "linear", "cosine"] = "linear"
    """Learning-rate schedule after warm-up."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
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
    """Loss aggregation: GRPO/VideoRFT, DAPO token mean, or Dr.GRPO constant normaliser."""
    inner_updates: int = 1
    """Policy updates per batch of rollouts; >1 uses old log-probs and clipping."""
    micro_rows: int = 0
    """Completions per forward/backward pass (gradient accumulation); 0 runs the whole step at once."""
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
    functions: list[str] = field(default_factory=lambda: ["accuracy", "format", "semantic"])
    """Reward functions summed into the total, in order."""
    semantic: SemanticRewardConfig = field(default_factory=SemanticRewardConfig)
    """Semantic-consistency reward (SigLIP)."""
    length_bonus: LengthBonusConfig = field(default_factory=LengthBonusConfig)
    """Length bonus for correct completions."""


@dataclass(kw_only=True)
class EvalConfig:
    benchmarks: list[str] = field(default_factory=lambda: ["synthetic"])
    """Benchmarks to score, in order."""
    temperature: float = 0.1
    """Decoding temperature (near-greedy with top_p)."""
    top_p: float = 0.001
    """Nucleus threshold of evaluation decoding."""
    max_new_tokens: int = 1024
    """Longest answer."""
    lenient_choice: bool = False
    """Extract the option letter from answers like "(B)" or "B. red" instead of exact match."""
    batch_size: int = 8
    """Prompts generated together."""


@dataclass(kw_only=True)
class SynthConfig:
    output_dir: str = "data/synth"
    """Where videos, scene graphs and train/test records are written."""
    num_train: int = 200
    """Training records."""
    num_test: int = 50
    """Held-out records."""
    seed: int = 0
    """World seed: the same seed writes the same videos and records."""
    width: int = 224
    """Frame width in pixels."""
    height: int = 224
    """Frame height in pixels."""
    fps: int = 8
    """Frame rate of the encoded videos."""
    duration_s: float = 4.0
    """Clip length in seconds."""
    codec: Literal["h264", "vp9"] = "h264"
    """H.264 mp4 or VP9 webm."""
    max_objects: int = 4
    """Most shapes in one scene (difficulty)."""
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    """"easy": 1-3 big shapes in four colours, colour/direction/count multiple choice (for a tiny VLM);
    "medium": events, signs and all five problem types; "hard": more, smaller, faster-changing shapes."""
    question_kinds: list[str] = field(default_factory=list)
    """Question kinds to ask, e.g. ["count", "direction"] (empty: the difficulty's own mix)."""
    cot_style: Literal["full", "brief"] = "full"
    """Reference reasoning: the five cognitive steps, or one or two short sentences."""
    workers: int = 1
    """Processes that render and encode videos (0: one per CPU core)."""


@dataclass(kw_only=True)
class ReportConfig:
    evaluations: dict[str, str] = field(default_factory=dict)
    """Label -> evaluation run directory (holding eval.json), in table order, e.g. base/sft/grpo."""
    output_file: str = "runs/results.json"
    """Where the combined {"stages": {label: metrics}} JSON is written."""
    columns: list[str] = field(default_factory=lambda: ["accuracy", "format", "semantic"])
    """Metrics shown in the printed table (all metrics go to the JSON)."""
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

