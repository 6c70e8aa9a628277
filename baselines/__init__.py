"""The methods AKDG is compared with, each one module on akdg's shared training loop (registered in akdg.registry)."""
