"""The methods AKDG is compared with, each one module on akdg's shared training loop."""

from baselines import joint, lit, mse, vanilla  # noqa: F401  (importing registers them)
