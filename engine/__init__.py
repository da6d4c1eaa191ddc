"""Training engine: configs, CLI, run directories, models, trainers, rewards, evaluation."""
