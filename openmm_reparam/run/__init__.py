"""The bookkeeping of a run, shared by every layer above it: the options and their groups (``options``), the
method registry (``registry``), the per-iteration recorder (``recorder``) and what a run returns (``result``).
Nothing here evaluates an energy."""
from .options import COMMON_GROUPS, MinimizerOptions
from .recorder import RunRecorder
from .registry import get_method, method_names, register_method, unregister_method
from .result import HistoryPoint, MinimizationResult, StageResult

__all__ = ["COMMON_GROUPS", "MinimizerOptions", "RunRecorder", "get_method", "method_names", "register_method",
           "unregister_method", "HistoryPoint", "MinimizationResult", "StageResult"]
