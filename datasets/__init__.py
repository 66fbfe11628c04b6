"""RNN Cell Lab data: IMDB sentiment, Multi30k translation and long-dependency toy tasks."""

RNNLAB = True  # lets `rnnlab` tell this package from Hugging Face's `datasets`

from datasets.base import DataConfig, DataSpec, data_dir  # noqa: E402

__all__ = ["DataConfig", "DataSpec", "data_dir"]
