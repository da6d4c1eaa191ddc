"""VideoRFT engine: reinforced fine-tuning of video multimodal LLMs.

Subpackages: `videorft.engine` (configs, models, trainers, rewards, CLI), `videorft.kernels`
(fused lm_head / log-prob / GRPO loss) and `videorft.loaders` (video decoding, preprocessing,
datasets, the synthetic video world).
"""

__version__ = "0.1.0"
