"""Length-adaptive exports: the pad-primed LSTM states, the folded input table, and an ONNX model
that takes only a message's real tokens. See `smsguard.runtime._lstm` for why they are exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from smsguard.runtime import InputLayout
from smsguard.runtime.bundle import NPZ_COMPACT_FORMAT, NPZ_FORMAT, OUTPUT_NAME

PRIMED_STATE_NODES = ("gather_primed_h", "gather_primed_c")  # left float when the model is quantized
FUSION = "mean of the word and n-gram probabilities; n-gram logit = ngram_bias + mean of ngram_scores over the non-zero ids (0 for none)"


def keras_weights(model) -> dict[str, np.ndarray]:
    """The weights of the tutorial's Embedding -> LSTM -> Dense network, by role; for a fused model, those
    of its word branch and the n-gram branch folded into one score per bucket (`ngram_scores`, `ngram_bias`)."""
    from smsguard.train import NGRAMS, folded_ngrams, word_branch

    words = word_branch(model)
    embedding = words.get_layer("embedding").get_weights()[0]
    kernel, recurrent, bias = words.get_layer("lstm").get_weights()
    dense_kernel, dense_bias = words.get_layer(OUTPUT_NAME).get_weights()
    weights = {
        "embedding": embedding,
        "kernel": kernel,
        "recurrent": recurrent,
        "bias": bias,
        "dense_kernel": dense_kernel.reshape(-1),
        "dense_bias": dense_bias.reshape(-1),
    }
    if words is not model:
        weights["ngram_scores"], weights["ngram_bias"] = folded_ngrams(model)
        weights["ngram_length"] = np.array(model.get_layer(NGRAMS).inputs[0].shape[1], dtype=np.int64)
    return weights


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


def write_npz(weights: dict[str, np.ndarray], maxlen: int, path: Path, quantize: bool, compact: bool = False) -> None:
    """The folded model for the NumPy backends; `quantize` stores the table as int8 per row. `compact` (with
    `quantize`) stores the int8 embedding and the input kernel apart instead, for the runtime to fold at load:
    (num_words x e) int8 instead of (num_words x 4u), half the bytes for the default model."""
    primed_h, primed_c = primed_states(weights, maxlen)
    meta = {"format": NPZ_COMPACT_FORMAT if compact else NPZ_FORMAT, "gates": "ifco", "activation": "tanh", "maxlen": maxlen} | _fusion(weights)
    arrays: dict[str, Any] = {
        "recurrent": weights["recurrent"].astype(np.float32),
        "dense_kernel": weights["dense_kernel"].astype(np.float32),
        "dense_bias": weights["dense_bias"].astype(np.float32),
        "primed_h": primed_h,
        "primed_c": primed_c,
        "meta": np.array(json.dumps(meta)),
    }
    if "ngram_scores" in weights:
        arrays["ngram_scores"], arrays["ngram_bias"] = weights["ngram_scores"], weights["ngram_bias"]
    if compact:
        arrays["embedding_q"], arrays["embedding_scale"] = _int8_rows(weights["embedding"].astype(np.float64))
        arrays["kernel"], arrays["bias"] = weights["kernel"].astype(np.float32), weights["bias"].astype(np.float32)
    elif quantize:
        arrays["table_q"], arrays["table_scale"] = _int8_rows(_folded_table(weights))
    else:
        arrays["table"] = _folded_table(weights).astype(np.float32)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _folded_table(weights: dict[str, np.ndarray]) -> np.ndarray:
    """The embedding folded into the LSTM's input projection, in float64: `E[id] @ W + b` for every id."""
    return weights["embedding"].astype(np.float64) @ weights["kernel"] + weights["bias"]


def _int8_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 values and one float32 scale a row (symmetric, to ±127)."""
    scale = np.maximum(np.abs(matrix).max(axis=1), 1e-12) / 127.0
    return np.clip(np.round(matrix / scale[:, None]), -127, 127).astype(np.int8), scale.astype(np.float32)


def _fusion(weights: dict[str, np.ndarray]) -> dict:
    """The meta of a fused model: how many n-gram ids follow the word ids, and how the branches combine."""
    if "ngram_scores" not in weights:
        return {}
    return {"ngram_length": int(weights["ngram_length"]), "fusion": FUSION}


def write_primed_onnx(weights: dict[str, np.ndarray], maxlen: int, input_name: str, output_name: str, path: Path, opset: int) -> None:
    """An ONNX model of any sequence length T >= 1: it starts the LSTM from the state after
    maxlen - T pads, so feeding a message's last max(L, 1) ids gives the fixed model's output.

    A fused model's input is those T word ids then its `ngram_length` n-gram ids; the model file states its
    layout in its metadata, which the runtime reads to split a row."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    fused = "ngram_scores" in weights
    words = "word_ids" if fused else input_name
    initializers, nodes = _lstm_graph(weights, maxlen, words, "word_probability" if fused else output_name)
    if fused:
        ngram_initializers, ngram_nodes = _ngram_graph(weights, input_name, words)
        initializers |= ngram_initializers
        nodes = ngram_nodes + nodes + [
            helper.make_node("Add", ["word_probability", "ngram_probability"], ["probability_sum"]),
            helper.make_node("Mul", ["probability_sum", "half"], [output_name]),
        ]
    graph = helper.make_graph(
        nodes,
        "smsguard_lstm_primed",
        [helper.make_tensor_value_info(input_name, TensorProto.INT32, ["batch", "steps"])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="smsguard")
    model.ir_version = 8  # readable by ONNX Runtime 1.13 and later
    helper.set_model_props(model, InputLayout(maxlen, int(weights["ngram_length"]) if fused else 0).metadata())
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def _onnx_gates(matrix: np.ndarray) -> np.ndarray:
    """Keras' gate order i, f, c, o -> ONNX's i, o, f, c."""
    i, f, c, o = np.split(matrix, 4, axis=-1)
    return np.concatenate([i, o, f, c], axis=-1)


def _lstm_graph(weights: dict[str, np.ndarray], maxlen: int, words: str, output: str) -> tuple[dict[str, np.ndarray], list]:
    """The word branch over `words` ([N, T] ids), started from the pad state of maxlen - T pads: its initializers and nodes."""
    from onnx import helper

    units = weights["recurrent"].shape[0]
    primed_h, primed_c = primed_states(weights, maxlen)
    initializers = {
        "embedding": weights["embedding"].astype(np.float32),
        "W": _onnx_gates(weights["kernel"]).T[None].astype(np.float32),
        "R": _onnx_gates(weights["recurrent"]).T[None].astype(np.float32),
        "B": np.concatenate([_onnx_gates(weights["bias"]), np.zeros(4 * units)])[None].astype(np.float32),
        "primed_h": primed_h,
        "primed_c": primed_c,
        "maxlen": np.array([maxlen], dtype=np.int64),
        "one": np.array([1], dtype=np.int64),
        "zero": np.array([0], dtype=np.int64),
        "dense_kernel": weights["dense_kernel"].reshape(units, 1).astype(np.float32),
        "dense_bias": weights["dense_bias"].reshape(1).astype(np.float32),
        "maxlen_end": np.array([2], dtype=np.int64),
        "units": np.array([units], dtype=np.int64),
    }
    nodes = [
        helper.make_node("Shape", [words], ["shape"]),
        helper.make_node("Slice", ["shape", "one", "maxlen_end", "zero"], ["steps"]),  # [T]
        helper.make_node("Slice", ["shape", "zero", "one", "zero"], ["batch"]),  # [N]
        helper.make_node("Sub", ["maxlen", "steps"], ["pads"]),  # [maxlen - T]
        helper.make_node("Gather", ["primed_h", "pads"], ["h_one"], name=PRIMED_STATE_NODES[0]),  # [1, u]
        helper.make_node("Gather", ["primed_c", "pads"], ["c_one"], name=PRIMED_STATE_NODES[1]),
        helper.make_node("Concat", ["one", "batch", "units"], ["state_shape"], axis=0),
        helper.make_node("Expand", ["h_one", "state_shape"], ["initial_h"]),  # [1, N, u]
        helper.make_node("Expand", ["c_one", "state_shape"], ["initial_c"]),
        helper.make_node("Gather", ["embedding", words], ["embedded"]),  # [N, T, e]
        helper.make_node("Transpose", ["embedded"], ["sequence"], perm=[1, 0, 2]),  # [T, N, e]
        helper.make_node("LSTM", ["sequence", "W", "R", "B", "", "initial_h", "initial_c"], ["", "last_h"], hidden_size=units),
        helper.make_node("Squeeze", ["last_h", "zero"], ["h"]),  # [N, u]
        helper.make_node("Gemm", ["h", "dense_kernel", "dense_bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [output]),
    ]
    return initializers, nodes


def _ngram_graph(weights: dict[str, np.ndarray], input_name: str, words: str) -> tuple[dict[str, np.ndarray], list]:
    """A fused model's row split into `words` and its n-gram ids, and the folded n-gram branch: `ngram_probability`."""
    from onnx import TensorProto, helper

    initializers: dict[str, np.ndarray] = {
        "ngram_length": np.array([int(weights["ngram_length"])], dtype=np.int64),
        "ngram_scores": weights["ngram_scores"].astype(np.float32),
        "ngram_bias": weights["ngram_bias"].reshape(1).astype(np.float32),
        "end": np.array([np.iinfo(np.int64).max], dtype=np.int64),
        "zero_id": np.array(0, dtype=np.int32),
        "one_float": np.array([1.0], dtype=np.float32),
        "half": np.array([0.5], dtype=np.float32),
    }
    nodes = [
        helper.make_node("Shape", [input_name], ["input_shape"]),
        helper.make_node("Slice", ["input_shape", "one", "maxlen_end", "zero"], ["width"]),  # [T + n-gram length]
        helper.make_node("Sub", ["width", "ngram_length"], ["word_steps"]),
        helper.make_node("Slice", [input_name, "zero", "word_steps", "one"], [words]),  # [N, T]
        helper.make_node("Slice", [input_name, "word_steps", "end", "one"], ["ngram_ids"]),  # [N, n-gram length]
        helper.make_node("Gather", ["ngram_scores", "ngram_ids"], ["ngram_score"]),  # [N, n-gram length], 0 for padding
        helper.make_node("ReduceSum", ["ngram_score", "one"], ["ngram_sum"], keepdims=1),  # [N, 1]
        helper.make_node("Greater", ["ngram_ids", "zero_id"], ["ngram_present"]),
        helper.make_node("Cast", ["ngram_present"], ["ngram_present_float"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["ngram_present_float", "one"], ["ngram_count"], keepdims=1),
        helper.make_node("Max", ["ngram_count", "one_float"], ["ngram_divisor"]),
        helper.make_node("Div", ["ngram_sum", "ngram_divisor"], ["ngram_mean"]),
        helper.make_node("Add", ["ngram_mean", "ngram_bias"], ["ngram_logit"]),
        helper.make_node("Sigmoid", ["ngram_logit"], ["ngram_probability"]),
    ]
    return initializers, nodes


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
