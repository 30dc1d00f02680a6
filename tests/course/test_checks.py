import numpy as np
import pytest
import torch

from genlib.course import ExerciseError, check_function, compare


def reference(x):
    return (x**2).sum(-1)


def inputs():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 3, generator=g),), (torch.randn(2, 5, generator=g),)]


def test_correct_answer_passes_and_counts(capsys):
    assert check_function(lambda x: (x * x).sum(-1), reference, inputs(), name="sq") is None
    assert "Correct: sq matches the reference on 2 input(s)" in capsys.readouterr().out


def test_not_implemented_says_so():
    def stub(x):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        check_function(stub, reference, inputs())


def test_wrong_shape_explains_missing_reduction():
    with pytest.raises(ExerciseError, match=r"shape \(4, 3\), expected \(4,\).*forget to sum"):
        check_function(lambda x: x**2, reference, inputs())


def test_wrong_values_name_index_and_factor():
    with pytest.raises(ExerciseError, match=r"exactly 2 times too large"):
        check_function(lambda x: 2 * (x**2).sum(-1), reference, inputs())
    with pytest.raises(ExerciseError, match=r"sign is flipped"):
        check_function(lambda x: -(x**2).sum(-1), reference, inputs())


def test_nan_and_exception_are_reported():
    with pytest.raises(ExerciseError, match="NaN"):
        check_function(lambda x: (x**2).sum(-1).log() * torch.nan, reference, inputs())
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        check_function(lambda x: 1 / 0, reference, inputs())


def test_infinite_values_point_to_log_space():
    with pytest.raises(ExerciseError, match="infinite at 4 positions.*logsumexp"):
        check_function(lambda x: torch.full((x.shape[0],), -torch.inf), reference, inputs())


def test_type_mismatch_and_tuples():
    assert compare(np.ones(3), torch.ones(3)).startswith("the result should be a torch tensor")
    assert compare((torch.ones(2), 3), (torch.ones(2), 3)) is None
    assert "item 1" in compare((torch.ones(2), torch.zeros(2)), (torch.ones(2), torch.ones(2)))
    assert "should be a tuple of 2 items" in compare(torch.ones(2), (1, 2))


def test_tolerance_is_respected():
    x = torch.ones(3)
    assert compare(x + 1e-8, x) is None
    assert compare(x + 1e-2, x) is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        check_function(reference, reference, [])
    with pytest.raises(TypeError, match="student must be a function"):
        check_function(3, reference, inputs())
