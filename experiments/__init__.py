"""RNN Cell Lab experiments: one training path, MLflow tracking, sweeps, reports and the CLI."""
