"""ONNX export and the ONNX Runtime scorer: the fast runtime of the served (student) model.

torch stays the reference: a saved ranker directory keeps its torch weights, and the export
writes beside them::

    model.onnx        the whole scoring graph (encoder, head, ranking score), fp32
    model.int8.onnx   the same with dynamic int8 MatMuls (weights int8, activations quantised
                      per batch), for ``serving.quantize``
    onnx.json         inputs, outputs, and the largest score difference to torch measured at export

Why ONNX Runtime: for a 2-layer, hidden-256 model the per-operator overhead of eager torch is
a large share of a request, and ORT fuses attention, GELU and LayerNorm into a few kernels; its
int8 MatMul uses VNNI where the CPU has it (docs/serving.md has the measured table).
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prodrank.models.encoder import EncodedBatch, PairEncoder
from prodrank.models.ranker import BatchScorer, CrossEncoderRanker, LoadedRanker, load_ranker

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
META_FILE = "onnx.json"
OPSET = 17
RUNTIMES = ("onnx", "torch")


class ScoringGraph(nn.Module):
    """The ranker as one function of tensors, for export: (ids, mask, types[, features]) ->
    (score, p_task ...), each [B]."""

    def __init__(self, model: CrossEncoderRanker) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
                features: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        output = self.model(EncodedBatch(input_ids, attention_mask, token_type_ids, torch.zeros(0), None, features))
        probabilities = output.probabilities()
        return (self.model.head.ranking_score(output), *(probabilities[t] for t in self.model.tasks))


def input_names(pair_encoder: PairEncoder) -> list[str]:
    return ["input_ids", "attention_mask", "token_type_ids"] + (["features"] if pair_encoder.features else [])


def feeds(batch: EncodedBatch) -> dict[str, np.ndarray]:
    out = {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy(),
           "token_type_ids": batch.token_type_ids.numpy()}
    if batch.features is not None:
        out["features"] = batch.features.numpy()
    return out


def export_onnx(ranker: LoadedRanker, directory: str | Path, sample: EncodedBatch) -> dict:
    """Write the fp32 and int8 graphs of ``ranker`` into ``directory`` (a saved ranker) and
    check the fp32 graph against torch on ``sample``; returns what ``onnx.json`` records."""
    if ranker.model.head.config.similarity_prior:
        raise ValueError("ONNX export covers rankers without the similarity prior (the distilled student)")
    directory = Path(directory)
    ranker.model.eval()
    names = input_names(ranker.pair_encoder)
    outputs = ["score", *(f"p_{t}" for t in ranker.tasks)]
    args = tuple(feeds(sample)[n] for n in names)
    dynamic = {n: {0: "pairs", 1: "tokens"} if n != "features" else {0: "pairs"} for n in names}
    dynamic.update({o: {0: "pairs"} for o in outputs})
    # a fresh wrapper is in training mode, and the exporter restores the wrapper's mode afterwards,
    # recursively: without .eval() the ranker would come back with dropout on
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(ScoringGraph(ranker.model).eval(), tuple(torch.from_numpy(a) for a in args),
                          str(directory / FP32_FILE), input_names=names, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    quantize(directory / FP32_FILE, directory / INT8_FILE)
    reference = ranker.score_batch(sample)
    exported = OnnxRanker(directory, ranker.pair_encoder, ranker.tasks, quantized=False, threads=1).score_batch(sample)
    meta = {"opset": OPSET, "inputs": names, "outputs": outputs,
            "max_abs_score_diff_fp32": float(np.abs(reference["score"] - exported["score"]).max())}
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


class OnnxRanker(BatchScorer):
    """A saved ranker scored by ONNX Runtime (module doc); same interface as :class:`LoadedRanker`."""

    runtime = "onnx"

    def __init__(self, directory: str | Path, pair_encoder: PairEncoder, tasks: tuple[str, ...], *,
                 quantized: bool, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle worker threads sleep rather than spin: on a small CPU shared with the HTTP stack a
        # spinning pool steals the cycles the request needs (as OMP_WAIT_POLICY=PASSIVE for torch)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(directory) / (INT8_FILE if quantized else FP32_FILE)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.pair_encoder = pair_encoder
        self._tasks = tasks
        self.quantized = quantized
        self._inputs = [i.name for i in self.session.get_inputs()]

    @property
    def tasks(self) -> tuple[str, ...]:
        return self._tasks

    def score_batch(self, batch: EncodedBatch) -> dict[str, np.ndarray]:
        values = feeds(batch)
        score, *probabilities = self.session.run(None, {name: values[name] for name in self._inputs})
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
    return (Path(directory) / FP32_FILE).exists() and (Path(directory) / INT8_FILE).exists()


def load_scorer(directory: str | Path, runtime: str = "onnx", quantize: bool = False, threads: int = 2) -> BatchScorer:
    """The saved ranker in ``directory`` on the requested runtime. ``onnx`` needs the exported
    graphs (the distilled student has them); a ranker without them is scored by torch, logged."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    torch_ranker = load_ranker(directory)
    if runtime == "onnx" and has_onnx(directory):
        return OnnxRanker(directory, torch_ranker.pair_encoder, torch_ranker.tasks, quantized=quantize, threads=threads)
    if runtime == "onnx":
        log.info("%s has no ONNX graphs: scoring with torch", directory)
    return quantize_encoder(torch_ranker, inplace=True) if quantize else torch_ranker
