import pytest

from genlib.recipes import get_recipe, list_recipes
from genlib.train import Budget


def test_every_recipe_is_complete():
    recipes = list_recipes()
    assert {"gmm-digits8x8", "gmm-toy2d"} <= {r.name for r in recipes}
    for r in recipes:
        assert isinstance(r.quick, Budget) and isinstance(r.full, Budget)
        assert r.config_cls()  # a default config exists
        assert callable(r.train) and callable(r.sample)


def test_unknown_recipe_lists_valid_names():
    with pytest.raises(KeyError, match="unknown recipe 'nope'; valid recipes: .*gmm-digits8x8"):
        get_recipe("nope")
