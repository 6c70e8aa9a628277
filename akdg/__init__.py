"""akdg: reproduce and extend 'Adversarial Knowledge Distillation for a Compact Generator'."""

__version__ = "0.1.0"
