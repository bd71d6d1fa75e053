"""saddle: a numerical laboratory for optimizer dynamics at high-dimensional saddle points."""

from .config import Config
from .errors import ConfigError, SaddleInputError
from .numerics import enable_x64

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "SaddleInputError", "enable_x64", "__version__"]
