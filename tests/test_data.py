"""Class names and label maps."""
from l2caf import data


def test_imagenet_class_names_are_unique_and_readable():
    names = data.imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    # Once 'a cat having a striped coat', two 'missile's and two 'sunglasses'.
    assert (names[0], names[282], names[657], names[744]) == (
        "tench", "tiger cat", "missile", "projectile")
    assert (names[836], names[837], names[638], names[639]) == (
        "sunglass", "sunglasses", "maillot", "tank suit")
    assert (names[134], names[517]) == ("crane (bird)", "crane (machine)")


def test_wordnet_ids_are_sorted_class_ids():
    wnids = data.imagenet_wnids()
    assert wnids == sorted(wnids) and wnids[0] == "n01440764" and len(set(wnids)) == 1000
