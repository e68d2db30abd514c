"""Writes the Keras ONNX fixtures of ``tests/test_onnx_exporters.py`` (run it by hand).

TensorFlow is too large for the test environment, so the graphs tf2onnx writes for Keras
models are kept here as files: ``keras_<name>.onnx`` plus ``keras_<name>.npz`` (inputs ``X``
and Keras' own outputs ``P``). Regenerate them in a separate environment with
``pip install tensorflow-cpu tf2onnx`` (measured: TensorFlow 2.21, Keras 3.15, tf2onnx 1.17)
and ``python tests/data/make_keras_onnx.py``. ``model.export(format="onnx")`` is Keras' own
ONNX route; it calls tf2onnx.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent


def main() -> None:
    L = tf.keras.layers
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    y2 = (X[:, 0] + X[:, 1] > 0).astype(int)
    models = {
        # 2 hidden layers: ReLU, batch normalisation, dropout, tanh, softmax
        "softmax": (
            [L.Dense(16, activation="relu"), L.BatchNormalization(), L.Dropout(0.2),
             L.Dense(8, activation="tanh"), L.Dense(3, activation="softmax")],
            y3, "sparse_categorical_crossentropy",
        ),
        # LeakyReLU, batch normalisation, sigmoid, and a binary sigmoid head
        "binary": (
            [L.Dense(8), L.LeakyReLU(0.2), L.BatchNormalization(),
             L.Dense(8, activation="sigmoid"), L.Dense(1, activation="sigmoid")],
            y2, "binary_crossentropy",
        ),
    }  # fmt: skip
    for name, (layers, y, loss) in models.items():
        tf.keras.utils.set_random_seed(0)
        model = tf.keras.Sequential([tf.keras.Input((6,)), *layers])
        model.compile("adam", loss)
        model.fit(X, y, epochs=5, verbose=0)
        model.export(str(HERE / f"keras_{name}.onnx"), format="onnx")
        Xs = X[:32]
        np.savez(HERE / f"keras_{name}.npz", X=Xs, P=model.predict(Xs, verbose=0))


if __name__ == "__main__":
    main()
