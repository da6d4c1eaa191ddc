"""Video decoding, Qwen-VL preprocessing, datasets and the synthetic video world."""
