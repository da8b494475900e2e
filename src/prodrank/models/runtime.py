"""ONNX export and the ONNX Runtime backend of the served (student) model.

torch stays the reference: a saved student keeps its torch weights, and the export writes
beside them::

    query.onnx         the query tower, mean-pooled: (input_ids, attention_mask) -> [N, H], fp32
    query.int8.onnx    the same with dynamic int8 MatMuls (weights int8, activations quantised
                       per batch), for ``serving.quantize``
    product.onnx       the product tower, fp32 (products the index does not hold)
    head.onnx          the multi-task head over the pair vectors: (query, product[, signals]
                       [, features]) -> (score, p_task ...)
    onnx.json          inputs, outputs, and the largest differences to torch measured at export

Products are always encoded in fp32, so a product encoded while serving matches the packaged
product index, which distillation computed in fp32. Why ONNX Runtime: at this size
the per-operator overhead of eager torch is a large share of a request, and ORT fuses
attention, GELU and LayerNorm into a few kernels; its int8 MatMul uses VNNI where the CPU has
it (docs/serving.md has the measured table).
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prodrank.models.encoder import pad_rows
from prodrank.models.ranker import BatchScorer, LoadedRanker, load_ranker
from prodrank.models.student import (
    StudentScorer,
    TorchBackend,
    TwoTowerStudent,
    is_student,
    load_index,
    load_student,
)

log = logging.getLogger(__name__)

QUERY_FILE = "query.onnx"
QUERY_INT8_FILE = "query.int8.onnx"
PRODUCT_FILE = "product.onnx"
HEAD_FILE = "head.onnx"
META_FILE = "onnx.json"
OPSET = 17
RUNTIMES = ("onnx", "torch")


class EmbeddingGraph(nn.Module):
    """One tower as one function of tensors: (ids, mask) -> mean-pooled [N, H]."""

    def __init__(self, model: TwoTowerStudent, side: str) -> None:
        super().__init__()
        self.model = model
        self.side = side

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.embed(input_ids, attention_mask, self.side)


class HeadGraph(nn.Module):
    """The student's head: (query [B, H], product [B, H][, signals [B, S]][, features [B, 2F]])
    -> (score, p_task ...); signals and features are inputs only of a student that has them."""

    def __init__(self, model: TwoTowerStudent) -> None:
        super().__init__()
        self.model = model

    def forward(self, query: torch.Tensor, product: torch.Tensor, *extras: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = iter(extras)
        signals = next(given) if self.model.signals else None
        features = next(given) if self.model.feature_size else None
        output = self.model(query, product, signals, features)
        probabilities = output.probabilities()
        return (self.model.head.ranking_score(output), *(probabilities[t] for t in self.model.tasks))


def _export(graph: nn.Module, args: tuple[torch.Tensor, ...], path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict) -> None:
    # a fresh wrapper is in training mode, and the exporter restores the wrapper's mode afterwards,
    # recursively: without .eval() the model would come back with dropout on
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(graph.eval(), args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)


def export_onnx(model: TwoTowerStudent, directory: str | Path, rows: list[list[int]], pad_token_id: int) -> dict:
    """Write the tower (query fp32 and int8, product fp32) and head graphs of ``model`` into
    ``directory`` (a saved student) and check them against torch on the token ``rows``; returns
    what ``onnx.json`` records."""
    directory = Path(directory)
    model.eval()
    ids, mask = pad_rows(rows, pad_token_id)
    for side, path in (("query", QUERY_FILE), ("product", PRODUCT_FILE)):
        _export(EmbeddingGraph(model, side), (ids, mask), directory / path, ["input_ids", "attention_mask"], ["vector"],
                {"input_ids": {0: "texts", 1: "tokens"}, "attention_mask": {0: "texts", 1: "tokens"}, "vector": {0: "texts"}})
    quantize(directory / QUERY_FILE, directory / QUERY_INT8_FILE)
    with torch.inference_mode():
        vectors = model.embed(ids, mask, "query")
    query, product = vectors, vectors.roll(1, dims=0)
    # varied signals in [0, 1] and features around 0, so the check covers the inputs' whole path
    generator = torch.Generator().manual_seed(0)
    extras = {"signals": torch.rand((len(rows), model.signals), generator=generator) if model.signals else None,
              "features": torch.randn((len(rows), model.feature_size), generator=generator) if model.feature_size else None}
    head_inputs = ["query", "product", *(name for name, value in extras.items() if value is not None)]
    outputs = ["score", *(f"p_{t}" for t in model.tasks)]
    _export(HeadGraph(model), (query, product, *(v for v in extras.values() if v is not None)), directory / HEAD_FILE,
            head_inputs, outputs, {**{n: {0: "pairs"} for n in head_inputs}, **{o: {0: "pairs"} for o in outputs}})
    reference, backend = TorchBackend(model), OnnxBackend(directory, quantized=False, threads=1)
    arrays = (ids.numpy(), mask.numpy())
    head_arrays = (query.numpy(), product.numpy(), *(None if v is None else v.numpy() for v in extras.values()))
    meta = {"opset": OPSET, "head_inputs": head_inputs, "outputs": outputs,
            **{f"max_abs_{side}_vector_diff_fp32": float(np.abs(reference.embed(*arrays, side) - backend.embed(*arrays, side)).max())
               for side in ("query", "product")},
            "max_abs_score_diff_fp32": float(np.abs(reference.head(*head_arrays)["score"]
                                                    - backend.head(*head_arrays)["score"]).max())}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle worker threads sleep rather than spin: on a small CPU shared with the HTTP stack a
    # spinning pool steals the cycles the request needs (as OMP_WAIT_POLICY=PASSIVE for torch)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxBackend:
    """A saved student's graphs on ONNX Runtime (module doc): the query tower in int8 when
    ``quantized``, the product tower always in fp32."""

    runtime = "onnx"

    def __init__(self, directory: str | Path, *, quantized: bool, threads: int) -> None:
        directory = Path(directory)
        self.quantized = quantized
        self.product_session = session(directory / PRODUCT_FILE, threads)
        self.query_session = session(directory / (QUERY_INT8_FILE if quantized else QUERY_FILE), threads)
        self.head_session = session(directory / HEAD_FILE, threads)
        self._head_inputs = [i.name for i in self.head_session.get_inputs()]
        self.reads_signals = "signals" in self._head_inputs
        self._tasks = [o.name.removeprefix("p_") for o in self.head_session.get_outputs()[1:]]

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, side: str) -> np.ndarray:
        graph = self.query_session if side == "query" else self.product_session
        return graph.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def head(self, query: np.ndarray, product: np.ndarray, signals: np.ndarray | None,
             features: np.ndarray | None) -> dict[str, np.ndarray]:
        values = {"query": query, "product": product, "signals": signals, "features": features}
        score, *probabilities = self.head_session.run(None, {name: values[name] for name in self._head_inputs})
        out = {"score": score.astype(np.float64)}
        out.update({t: p.astype(np.float64) for t, p in zip(self._tasks, probabilities, strict=True)})
        return out


def quantize_encoder(ranker: LoadedRanker, inplace: bool = False) -> LoadedRanker:
    """torch's dynamic int8 quantisation of the encoder's Linear layers (weights int8, activations
    quantised per batch); the multi-task head stays fp32. ``inplace=False`` leaves ``ranker``
    untouched (a deep copy is quantised) so both can be compared."""
    import copy

    model = ranker.model if inplace else copy.deepcopy(ranker.model)
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao (not installed)
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        model.encoder = quantize_dynamic(model.encoder, {nn.Linear}, dtype=torch.qint8, inplace=True)
    model.eval()
    return LoadedRanker(model, ranker.pair_encoder, quantized=True)


def has_onnx(directory: str | Path) -> bool:
    return all((Path(directory) / name).exists() for name in (QUERY_FILE, QUERY_INT8_FILE, PRODUCT_FILE, HEAD_FILE))


def load_scorer(directory: str | Path, runtime: str = "onnx", quantize: bool = False, threads: int = 2) -> BatchScorer:
    """The saved model in ``directory`` on the requested runtime: a student on ONNX Runtime
    (when its graphs are there) or torch, a teacher (cross-encoder) in torch."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if is_student(directory):
        model, pair_encoder = load_student(directory)
        if runtime == "onnx" and has_onnx(directory):
            backend = OnnxBackend(directory, quantized=quantize, threads=threads)
        elif quantize:
            raise ValueError(f"{directory}: the student's int8 graph runs on ONNX Runtime; set serving.runtime: onnx "
                             "(with the exported graphs) or serving.quantize: false")
        else:
            backend = TorchBackend(model)
        return StudentScorer(backend, pair_encoder, model.tasks, load_index(directory))
    torch_ranker = load_ranker(directory)
    if runtime == "onnx":
        log.info("%s is a cross-encoder, served in torch (only the student has ONNX graphs)", directory)
    return quantize_encoder(torch_ranker, inplace=True) if quantize else torch_ranker
