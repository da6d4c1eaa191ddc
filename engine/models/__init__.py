"""Model wrappers, tiny offline models and tokenizers."""
