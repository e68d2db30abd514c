"""Data set loading: names, files, arrays, the fixed split, and one-line errors."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import load_dataset


def test_digits_is_the_default_with_the_fixed_split():
    ds = load_dataset()
    assert ds.name == "digits" and ds.n_features == 64 and ds.n_classes == 10
    assert ds.class_names == [str(k) for k in range(10)]
    assert (len(ds.y_train), len(ds.y_test)) == (1347, 450)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X_tr, X_te, y_tr, y_te = train_test_split(
        bunch.data, bunch.target, test_size=0.25, random_state=0, stratify=bunch.target
    )
    np.testing.assert_array_equal(ds.X_train, X_tr)
    np.testing.assert_array_equal(ds.X_test, X_te)
    np.testing.assert_array_equal(ds.y_train, y_tr)
    np.testing.assert_array_equal(ds.y_test, y_te)
    assert ds.split["stratify"] and ds.split["random_state"] == 0


@pytest.mark.parametrize(
    "name,n_features,n_classes", [("iris", 4, 3), ("wine", 13, 3), ("breast_cancer", 30, 2)]
)
def test_sklearn_names(name, n_features, n_classes):
    ds = load_dataset(name)
    assert (ds.n_features, ds.n_classes, ds.name) == (n_features, n_classes, name)
    # stratified: every class appears in the test split in proportion
    counts = np.bincount(ds.y_test, minlength=n_classes)
    assert counts.min() >= 1


def _toy(n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)) * [1, 100, 0.01]
    y = np.array([7, 3, 9, 3] * (n // 4))
    return X, y


def test_arrays_and_label_mapping():
    X, y = _toy()
    ds = load_dataset((X, y))
    assert ds.class_names == ["3", "7", "9"] and ds.name == "arrays"
    assert set(ds.y_train) | set(ds.y_test) == {0, 1, 2}
    assert len(ds.y_test) == 10
    # labels keep their meaning: every training row's label maps back to its original one
    orig = {tuple(row): lab for row, lab in zip(X, y, strict=True)}
    for row, lab in zip(ds.X_train, ds.y_train, strict=True):
        assert orig[tuple(row)] == int(ds.class_names[lab])


def test_npz_file(tmp_path):
    X, y = _toy()
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    ds = load_dataset(str(path))
    assert ds.name == str(path) and ds.n_features == 3 and ds.n_classes == 3
    np.testing.assert_array_equal(
        np.sort(np.concatenate([ds.X_train, ds.X_test]), axis=0), np.sort(X, axis=0)
    )


@pytest.mark.parametrize("header", [True, False])
def test_csv_file(tmp_path, header):
    X, y = _toy()
    lines = ["f1,f2,f3,label"] if header else []
    names = {3: "cat", 7: "dog", 9: "eel"}
    lines += [
        ",".join([*(repr(float(v)) for v in row), names[lab]])
        for row, lab in zip(X, y, strict=True)
    ]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(path)
    assert ds.class_names == ["cat", "dog", "eel"]
    assert len(ds.y_train) + len(ds.y_test) == 40 and ds.n_features == 3


def _error(source, match):
    with pytest.raises(UserError, match=match) as info:
        load_dataset(source)
    assert "\n" not in str(info.value)


def test_bad_sources(tmp_path):
    _error("mnist", "unknown data set 'mnist'; use one of digits")
    _error(str(tmp_path / "none.csv"), "not found")
    np.savez(tmp_path / "noy.npz", X=np.zeros((4, 2)))
    _error(str(tmp_path / "noy.npz"), "no array y")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    _error(str(tmp_path / "junk.npz"), "not a readable .npz")
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,4,1\n5,1\n")
    _error(str(tmp_path / "ragged.csv"), "row 3 has 2 columns")
    (tmp_path / "text.csv").write_text("a,b,c\n1,x,0\n2,3,1\n")
    _error(str(tmp_path / "text.csv"), "not a number")
    (tmp_path / "empty.csv").write_text("a,b,label\n")
    _error(str(tmp_path / "empty.csv"), "no data rows")


def test_bad_arrays():
    X, y = _toy()
    _error((X, np.zeros(40)), "at least two classes")
    _error((X, y[:-1]), "labels must be a vector of 40")
    _error((X[:, 0], y), "2-D array")
    lonely = y.copy()
    lonely[0] = 5
    _error((X, lonely), "class '5' has only 1 sample")
    bad = X.copy()
    bad[2, 1] = np.nan
    _error((bad, y), "NaN")
