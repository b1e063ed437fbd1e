"""scaffoldrl: RL of reasoning language models with hint scaffolding."""

from .records import Problem, RecordError, RecordList, Subproblem, read_records, write_records

__all__ = ["Problem", "RecordError", "RecordList", "Subproblem", "read_records", "write_records"]
__version__ = "0.1.0"
