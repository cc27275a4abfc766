"""Length-adaptive exports: the pad-primed LSTM states, the folded input table, and an ONNX model
that takes only a message's real tokens. See `smsguard.runtime._lstm` for why they are exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from smsguard.runtime.bundle import NPZ_FORMAT, OUTPUT_NAME

PRIMED_STATE_NODES = ("gather_primed_h", "gather_primed_c")  # left float when the model is quantized


def keras_weights(model) -> dict[str, np.ndarray]:
    """The weights of the tutorial's Embedding -> LSTM -> Dense network, by role."""
    embedding = model.get_layer("embedding").get_weights()[0]
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    dense_kernel, dense_bias = model.get_layer(OUTPUT_NAME).get_weights()
    return {
        "embedding": embedding,
        "kernel": kernel,
        "recurrent": recurrent,
        "bias": bias,
        "dense_kernel": dense_kernel.reshape(-1),
        "dense_bias": dense_bias.reshape(-1),
    }


def primed_states(weights: dict[str, np.ndarray], maxlen: int) -> tuple[np.ndarray, np.ndarray]:
    """The LSTM state after k pad tokens (id 0) from the zero state, for k = 0..maxlen."""
    x = weights["embedding"][0].astype(np.float64) @ weights["kernel"] + weights["bias"]
    recurrent = weights["recurrent"].astype(np.float64)
    units = recurrent.shape[0]
    h, c = np.zeros(units), np.zeros(units)
    hs, cs = [h], [c]
    for _ in range(maxlen):
        z = x + h @ recurrent
        i, f, g, o = np.split(z, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.asarray(hs, dtype=np.float32), np.asarray(cs, dtype=np.float32)


def write_npz(weights: dict[str, np.ndarray], maxlen: int, path: Path, quantize: bool) -> None:
    """The folded model for the NumPy backends; `quantize` stores the table as int8 per row."""
    table = weights["embedding"].astype(np.float64) @ weights["kernel"] + weights["bias"]
    primed_h, primed_c = primed_states(weights, maxlen)
    arrays: dict[str, Any] = {
        "recurrent": weights["recurrent"].astype(np.float32),
        "dense_kernel": weights["dense_kernel"].astype(np.float32),
        "dense_bias": weights["dense_bias"].astype(np.float32),
        "primed_h": primed_h,
        "primed_c": primed_c,
        "meta": np.array(json.dumps({"format": NPZ_FORMAT, "gates": "ifco", "activation": "tanh", "maxlen": maxlen})),
    }
    if quantize:
        scale = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
        arrays["table_q"] = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
        arrays["table_scale"] = scale.astype(np.float32)
    else:
        arrays["table"] = table.astype(np.float32)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def write_primed_onnx(weights: dict[str, np.ndarray], maxlen: int, input_name: str, output_name: str, path: Path, opset: int) -> None:
    """An ONNX model of any sequence length T >= 1: it starts the LSTM from the state after
    maxlen - T pads, so feeding a message's last max(L, 1) ids gives the fixed model's output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    units = weights["recurrent"].shape[0]
    primed_h, primed_c = primed_states(weights, maxlen)

    def onnx_gates(matrix: np.ndarray) -> np.ndarray:  # Keras i, f, c, o -> ONNX i, o, f, c
        i, f, c, o = np.split(matrix, 4, axis=-1)
        return np.concatenate([i, o, f, c], axis=-1)

    initializers = {
        "embedding": weights["embedding"].astype(np.float32),
        "W": onnx_gates(weights["kernel"]).T[None].astype(np.float32),
        "R": onnx_gates(weights["recurrent"]).T[None].astype(np.float32),
        "B": np.concatenate([onnx_gates(weights["bias"]), np.zeros(4 * units)])[None].astype(np.float32),
        "primed_h": primed_h,
        "primed_c": primed_c,
        "maxlen": np.array([maxlen], dtype=np.int64),
        "one": np.array([1], dtype=np.int64),
        "zero": np.array([0], dtype=np.int64),
        "dense_kernel": weights["dense_kernel"].reshape(units, 1).astype(np.float32),
        "dense_bias": weights["dense_bias"].reshape(1).astype(np.float32),
    }
    nodes = [
        helper.make_node("Shape", [input_name], ["shape"]),
        helper.make_node("Slice", ["shape", "one", "maxlen_end", "zero"], ["steps"]),  # [T]
        helper.make_node("Slice", ["shape", "zero", "one", "zero"], ["batch"]),  # [N]
        helper.make_node("Sub", ["maxlen", "steps"], ["pads"]),  # [maxlen - T]
        helper.make_node("Gather", ["primed_h", "pads"], ["h_one"], name=PRIMED_STATE_NODES[0]),  # [1, u]
        helper.make_node("Gather", ["primed_c", "pads"], ["c_one"], name=PRIMED_STATE_NODES[1]),
        helper.make_node("Concat", ["one", "batch", "units"], ["state_shape"], axis=0),
        helper.make_node("Expand", ["h_one", "state_shape"], ["initial_h"]),  # [1, N, u]
        helper.make_node("Expand", ["c_one", "state_shape"], ["initial_c"]),
        helper.make_node("Gather", ["embedding", input_name], ["embedded"]),  # [N, T, e]
        helper.make_node("Transpose", ["embedded"], ["sequence"], perm=[1, 0, 2]),  # [T, N, e]
        helper.make_node("LSTM", ["sequence", "W", "R", "B", "", "initial_h", "initial_c"], ["", "last_h"], hidden_size=units),
        helper.make_node("Squeeze", ["last_h", "zero"], ["h"]),  # [N, u]
        helper.make_node("Gemm", ["h", "dense_kernel", "dense_bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [output_name]),
    ]
    initializers["maxlen_end"] = np.array([2], dtype=np.int64)
    initializers["units"] = np.array([units], dtype=np.int64)
    graph = helper.make_graph(
        nodes,
        "smsguard_lstm_primed",
        [helper.make_tensor_value_info(input_name, TensorProto.INT32, ["batch", "steps"])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="smsguard")
    model.ir_version = 8  # readable by ONNX Runtime 1.13 and later
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
