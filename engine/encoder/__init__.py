"""The tiny SigLIP encoder of the CPU pipeline: built offline, trained contrastively on the
synthetic world's frame/caption pairs, saved like a released SigLIP checkpoint."""

from videorft.engine.encoder.tiny_siglip import (
    build_caption_tokenizer,
    build_image_processor,
    build_tiny_siglip,
    save_encoder,
    tiny_siglip_config,
    write_untrained_encoder,
)
from videorft.engine.encoder.train import pair_accuracy, sigmoid_pair_loss, train_encoder

__all__ = ["build_caption_tokenizer", "build_image_processor", "build_tiny_siglip", "pair_accuracy",
           "save_encoder", "sigmoid_pair_loss", "tiny_siglip_config", "train_encoder",
           "write_untrained_encoder"]
