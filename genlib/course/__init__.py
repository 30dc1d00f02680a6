"""Course tools: exercise checks that explain wrong answers, and student exports."""

from genlib.course.checks import ExerciseError, check_function, compare
from genlib.course.export import export_student, strip_solutions

__all__ = ["ExerciseError", "check_function", "compare", "export_student", "strip_solutions"]
