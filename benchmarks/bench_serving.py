"""Serving benchmark: the running BentoML server over HTTP against the naive baseline.

    python benchmarks/bench_serving.py                     # tiny model (tiny profile's shape), quick
    python benchmarks/bench_serving.py --arch minilm       # default architecture (MiniLM-L6 + MMoE head)
    python benchmarks/bench_serving.py --model-dir models/student --teacher-dir models/ranker
                                                           # what `make run` packages: the two-tower student serves
    python benchmarks/bench_serving.py --model-dir models/ranker   # a trained ranker on its own (torch)
    python benchmarks/bench_serving.py --url http://127.0.0.1:3000 # an already running server

Without ``--url`` it packages the model into a temporary BentoML home, starts
``bentoml serve`` on a free loopback port, and stops it (SIGTERM by PID) at the end. The
served model runs as the server runs it: ``serving.runtime`` (ONNX Runtime for a student
with exported graphs, torch otherwise) and ``--quantize``.

Reported, with the hardware (SIMD flags included) and settings:
1. over HTTP: p50/p95/p99 latency and throughput of rank@10/50/100 at concurrency 1 and 4;
2. the naive baseline in the same run, same threads: transformers-style tokenisation padded
   to the budget's max_length, no length sorting, one request at a time in batches of 32, in
   torch fp32, of the teacher (``--teacher-dir``) or else of the served model's own weights —
   as a speed ratio; the optimised scorer in-process (no HTTP) too;
3. FLOPs per pair at the measured token lengths vs the measured fp32 matmul GFLOP/s;
4. int8: speed, and accuracy cost vs fp32 (score correlation, top-10 overlap, NDCG@10
   against the synthetic world's true relevance).
The load generator runs on the same CPU as the server: HTTP figures include its cost.

Every workload product is scored once before timing, by the server and in-process: a two-tower
student finds a catalogue product's vector in its packaged product index, so a timed request
pays the query and the head only. Products it has never seen cost an encoder pass each; for a
student, rank@N with every product new is timed in-process too ("cold").
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

# as in the service (src/prodrank/serving/service.py): sleeping, not spinning, OpenMP threads;
# set before torch loads OpenMP so the in-process and naive measurements run like the server
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prodrank.config import load_config  # noqa: E402
from prodrank.models.encoder import FIELD_ORDER, EncodedBatch  # noqa: E402
from prodrank.models.ranker import LoadedRanker, load_ranker, save_ranker  # noqa: E402
from prodrank.models.runtime import load_scorer  # noqa: E402
from prodrank.models.student import is_student, load_student  # noqa: E402
from prodrank.serving.engine import RankingEngine, compare_rankings  # noqa: E402
from prodrank.serving.process import ServerProcess, request  # noqa: E402

PRODUCT_FEATURES = ("price", "rating")  # sent with every candidate; a ranker reads those it was trained on
BENCH_GATE = {"quality_gate": {"passed": True, "problems": []}, "methods": {}, "n_queries": 0,
              "note": "benchmark copy, not evaluated"}


# -- hardware ----------------------------------------------------------------------------------
def hardware() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags"))
        info["simd"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
                                if f in flags)
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    info["load_average_1m"] = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    info["cores_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        info["memory_gb"] = round(int(mem.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    return info


def matmul_gflops(m: int, k: int, n: int, threads: int, trials: int = 7, seconds: float = 0.25) -> float:
    """Best of several short timed runs of an fp32 [m,k]@[k,n] (best-of: other load on a shared
    machine only ever slows a run down, so the fastest run is the closest to the machine's rate)."""
    torch.set_num_threads(threads)
    a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    best = 0.0
    for _ in range(trials):
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b, out=out)
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    return best


# -- model -------------------------------------------------------------------------------------
def build_model(arch: str, out: Path) -> Path:
    """A ranker of the given architecture with untrained head (speed does not depend on training)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from prodrank.models.encoder import InputBudget, PairEncoder
    from prodrank.models.multitask import HeadConfig
    from prodrank.models.ranker import CrossEncoderRanker
    from prodrank.training.pretrain import minilm_path

    torch.manual_seed(0)
    profile = "tiny" if arch == "tiny" else "default"
    cfg = load_config(ROOT / "params.yaml", profile)
    tcfg = cfg.train
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    if arch == "minilm":
        encoder = BertModel.from_pretrained(minilm_path(), add_pooling_layer=False)
    else:
        s = cfg.pretrain.scratch
        encoder = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=s.hidden_size,
                                       num_hidden_layers=s.num_hidden_layers, num_attention_heads=s.num_attention_heads,
                                       intermediate_size=s.intermediate_size, max_position_embeddings=512),
                            add_pooling_layer=False)
    head = HeadConfig(input_size=encoder.config.hidden_size, tasks=tuple(t.name for t in tcfg.tasks),
                      architecture=tcfg.architecture, n_experts=tcfg.n_experts, task_experts=tcfg.task_experts,
                      expert_hidden=tcfg.expert_hidden, tower_hidden=tcfg.tower_hidden, dropout=0.0,
                      chaining=tcfg.chaining, score_weights=dict(tcfg.score_weights))
    model = CrossEncoderRanker(encoder, head).eval()
    budget = InputBudget(tcfg.query_max_tokens, tcfg.fields.model_dump())
    save_ranker(model, PairEncoder(tokenizer, budget), out)
    return out


# -- workload ----------------------------------------------------------------------------------
def workload(sizes: list[int], n_requests: int, seed: int) -> dict:
    """Queries and candidate lists from the synthetic world (tiny profile): realistic text
    lengths, and true relevance grades for the quantisation NDCG check."""
    from prodrank.sim.world import generate_world

    cfg = load_config(ROOT / "params.yaml", "tiny")
    tables = generate_world(cfg.world, cfg.seed)
    catalog = tables["catalog"].set_index("product_id")
    queries = tables["queries"].set_index("query_id")["query"]
    grades = tables["relevance"].groupby("query_id")
    rng = np.random.default_rng(seed)
    all_ids = catalog.index.to_numpy()
    qids = queries.index.to_numpy()
    out = {}
    for size in sizes:
        reqs = []
        for _ in range(n_requests):
            qid = rng.choice(qids)
            judged = grades.get_group(qid) if qid in grades.groups else None
            ids = list(judged["product_id"][:size]) if judged is not None else []
            others = [p for p in rng.choice(all_ids, size * 2, replace=False) if p not in set(ids)]
            ids = (ids + others)[:size]
            rng.shuffle(ids)
            gain = dict(zip(judged["product_id"], judged["relevance"], strict=True)) if judged is not None else {}
            cands = []
            for pid in ids:
                row = catalog.loc[pid]
                cands.append({"id": pid, **{f: (None if row[f] is None or row[f] != row[f] else str(row[f]))
                                             for f in FIELD_ORDER},
                              **{f: float(row[f]) for f in PRODUCT_FEATURES}})
            reqs.append({"query": str(queries[qid]), "candidates": cands,
                         "gains": np.array([float(gain.get(p, 0)) for p in ids])})
        out[size] = reqs
    return out


def engine_candidates(request: dict) -> list[dict]:
    """A request's candidates as the engine takes them: text fields and product features, as the
    service passes a /rank body."""
    return [{"id": c["id"], "fields": {f: c.get(f) for f in (*FIELD_ORDER, *PRODUCT_FEATURES)}}
            for c in request["candidates"]]


# -- server ------------------------------------------------------------------------------------
def start_server(teacher_dir: Path, student_dir: Path | None, threads: int, quantize: bool, workdir: Path,
                 catalog: Path) -> ServerProcess:
    """``bentoml serve`` of the teacher packaged with its student (None: the teacher serves) and
    the search index of ``catalog`` (/search)."""
    from prodrank.serving.registry import save_model

    home = workdir / "bentoml"
    os.environ["BENTOML_HOME"] = str(home)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["serving"].update({"threads": threads, "quantize": quantize, "log_dir": str(workdir / "logs"),
                              "bentoml_home": str(home), "max_candidates": 200, "max_body_bytes": 5_000_000,
                              "model": "student" if student_dir else "teacher"})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(workdir / "params.yaml")
    tag = save_model(teacher_dir, BENCH_GATE, cfg, catalog=catalog, student_dir=student_dir)
    server = ServerProcess.start({"BENTOML_HOME": str(home), "PRODRANK_PARAMS": str(workdir / "params.yaml"),
                                  "PRODRANK_MODEL_TAG": tag}, workdir / "server.log", cwd=ROOT)
    try:
        server.wait_ready(180)
    except BaseException:
        server.stop()
        raise
    return server


def http_load(url: str, bodies: list[bytes], concurrency: int) -> dict:
    """Send every body once with `concurrency` keep-alive connections; latency per request."""
    parsed = urlparse(url)
    latencies: list[float] = []
    lock = threading.Lock()
    items = iter(bodies)

    def worker() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        while True:
            with lock:
                body = next(items, None)
            if body is None:
                break
            start = time.perf_counter()
            conn.request("POST", "/rank", body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - start
            if response.status != 200:
                raise RuntimeError(f"/rank answered {response.status}: {payload[:300]!r}")
            with lock:
                latencies.append(elapsed)
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "req_s": len(ms) / wall}


def search_load(url: str, queries: list[str], n: int) -> dict:
    """POST /search {query, k: 10, n} once per query at c=1: latency over HTTP, and the server's own
    retrieval time (BM25 over the packaged catalogue) per request."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    latencies, retrieval = [], []
    for query in queries:
        start = time.perf_counter()
        conn.request("POST", "/search", body=json.dumps({"query": query, "k": 10, "n": n}),
                     headers={"content-type": "application/json"})
        response = conn.getresponse()
        payload = json.loads(response.read())
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"/search answered {response.status}: {str(payload)[:300]}")
        retrieval.append(payload["retrieval_ms"])
    conn.close()
    out = _stats(latencies)
    out.update({"retrieval_ms_p50": float(np.percentile(retrieval, 50)),
                "retrieval_ms_p99": float(np.percentile(retrieval, 99))})
    return out


# -- the naive baseline ------------------------------------------------------------------------
def naive_max_length(ranker: LoadedRanker) -> int:
    budget = ranker.pair_encoder.budget
    markers = sum(len(ranker.pair_encoder._markers[f]) for f in FIELD_ORDER if budget.fields.get(f, 0) > 0)
    return budget.query_max_tokens + sum(budget.fields.values()) + markers + 3


def naive_score(ranker: LoadedRanker, request: dict, max_length: int, batch_size: int = 32) -> np.ndarray:
    """What a first implementation does: HF pair tokenisation per request, every pair padded
    to max_length, request order (no length sorting), fixed batches, torch.no_grad. A ranker
    with product features gets each candidate's feature vector, as the optimised path does."""
    tok = ranker.pair_encoder.tokenizer
    features = ranker.pair_encoder.features
    texts = [" ".join(f"{f}: {c[f]}" for f in FIELD_ORDER if c.get(f)) for c in request["candidates"]]
    scores = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            chunk = texts[i:i + batch_size]
            enc = tok([request["query"]] * len(chunk), chunk, padding="max_length", truncation="longest_first",
                      max_length=max_length, return_tensors="pt")
            vectors = (torch.tensor([features.vector(c) for c in request["candidates"][i:i + batch_size]])
                       if features else None)
            batch = EncodedBatch(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"],
                                 torch.zeros(len(chunk), dtype=torch.bool), features=vectors)
            scores.append(ranker.model.head.ranking_score(ranker.model(batch)))
    return torch.cat(scores).numpy()


def _stats(ms: list[float]) -> dict:
    arr = np.array(ms)
    return {"n": len(arr), "p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
            "p99": float(np.percentile(arr, 99)), "req_s": 1000 * len(arr) / arr.sum()}


def timed(fn, requests: list[dict]) -> dict:
    return timed_pair({"x": fn}, requests)["x"]


def timed_pair(fns: dict, requests: list[dict]) -> dict:
    """Time several scorers on the same requests, interleaved request by request, so that
    other load on a shared machine hits them alike."""
    ms: dict[str, list[float]] = {name: [] for name in fns}
    for req in requests:
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(req)
            ms[name].append((time.perf_counter() - start) * 1000)
    return {name: _stats(values) for name, values in ms.items()}


# -- FLOPs -------------------------------------------------------------------------------------
def linear_flops(module: torch.nn.Module) -> float:
    return float(sum(2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)))


def encoder_flops(encoder: torch.nn.Module, length: float) -> float:
    """Forward FLOPs of one text of ``length`` tokens: every Linear per token, attention scores
    and mixing (4 L^2 h per layer)."""
    cfg = encoder.config
    return linear_flops(encoder) * length + cfg.num_hidden_layers * 4 * length * length * cfg.hidden_size


def flops_per_pair(ranker: LoadedRanker, length: float) -> float:
    """A cross-encoder pair at ``length`` tokens: the encoder over the pair, the head once."""
    return encoder_flops(ranker.model.encoder, length) + linear_flops(ranker.model.head)


def student_flops(model_dir: Path, requests: list[dict]) -> dict:
    """A two-tower student's FLOPs per pair at rank@N: the head and the product adapter per pair
    plus the query's encoder pass shared by the N pairs (product in the index), and the
    product's own pass when it is not."""
    model, pe = load_student(model_dir)
    queries, products, sizes = [], [], []
    for req in requests:
        cands = engine_candidates(req)
        pe.encode_products({c["id"]: c["fields"] for c in cands})
        queries += [len(r) for r in pe.query_rows([req["query"]])[0]]
        products += [len(r) for r in pe.product_rows([c["id"] for c in cands])]
        sizes.append(len(cands))
    q_len, p_len, n = float(np.mean(queries)), float(np.mean(products)), float(np.mean(sizes))
    per_pair = linear_flops(model.head) + (linear_flops(model.product_adapter) if model.product_adapter else 0.0)
    warm = per_pair + encoder_flops(model.query_encoder, q_len) / n
    return {"query_tokens": q_len, "product_tokens": p_len, "candidates": n, "mflops_per_pair_indexed": warm / 1e6,
            "mflops_per_pair_new_product": (warm + encoder_flops(model.product_encoder, p_len)) / 1e6}


def new_products(request: dict, tag: str) -> dict:
    """The request with every candidate's title changed: products the model has never seen."""
    return {**request, "candidates": [{**c, "title": f"{c.get('title') or ''} {tag}"} for c in request["candidates"]]}


def warm_products(rank, requests: dict) -> None:
    """Score every workload product once, 100 at a time (see the module doc)."""
    seen: dict[str, dict] = {}
    for reqs in requests.values():
        for r in reqs:
            seen.update({c["id"]: c for c in r["candidates"]})
    candidates = list(seen.values())
    for start in range(0, len(candidates), 100):
        rank({"query": "warm up", "candidates": candidates[start : start + 100]})


def measured_lengths(ranker: LoadedRanker, requests: list[dict], batch_size: int) -> tuple[float, float]:
    """(mean real pair length, mean padded length) of the optimised path: pairs sorted by
    length, batches of ``batch_size``, each padded to its own longest pair."""
    real, padded = [], []
    pe = ranker.pair_encoder
    for req in requests:
        cands = engine_candidates(req)
        products = {c["id"]: c["fields"] for c in cands}
        pe.encode_products(products)
        lengths = sorted(pe.pair_lengths([req["query"]] * len(cands), [c["id"] for c in cands]))
        real += lengths
        for i in range(0, len(lengths), batch_size):
            chunk = lengths[i:i + batch_size]
            padded += [max(chunk)] * len(chunk)
    return float(np.mean(real)), float(np.mean(padded))


# -- main --------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="benchmark this running server (its model is loaded from $BENTOML_HOME)")
    parser.add_argument("--model-dir", type=Path, help="the saved model to serve: a distilled student (with "
                        "--teacher-dir) or any saved ranker (default: build --arch)")
    parser.add_argument("--teacher-dir", type=Path, help="the ranker the student was distilled from: packaged with "
                        "it, and the naive baseline")
    parser.add_argument("--arch", choices=["tiny", "minilm"], default="tiny",
                        help="untrained ranker to build when no --model-dir: tiny profile's shape, or MiniLM-L6 + MMoE")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--requests", type=int, default=40, help="requests per (size, concurrency)")
    parser.add_argument("--naive-requests", type=int, default=8, help="requests per size for the naive baseline")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quantize", action="store_true",
                        help="serve (and score in-process) with serving.quantize (int8); the naive baseline stays fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--catalog", type=Path, default=ROOT / "data" / "prepared" / "catalog.parquet",
                        help="catalogue indexed for /search (default: the pipeline's; timed when it exists)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

    workdir = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    server = None
    report: dict = {"hardware": hardware(), "settings": {"threads": args.threads, "sizes": args.sizes,
                                                           "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                                                           "concurrency": args.concurrency, "requests": args.requests}}
    serving = load_config(ROOT / "params.yaml").serving
    try:
        if args.url:
            url = args.url.rstrip("/")
            meta = json.loads(request(url, "GET", "/metadata")[1])
            from prodrank.serving.registry import model_metadata, served_dir

            path = Path(model_metadata(meta["model_tag"])["path"])
            model_dir, teacher_dir = served_dir(path, serving.model), path / "ranker"
            report["settings"]["model"] = meta["model_tag"]
            report["settings"]["quantize"] = meta["serving"]["quantize"]
        else:
            model_dir = args.model_dir or build_model(args.arch, workdir / "ranker")
            teacher_dir = args.teacher_dir or model_dir
            report["settings"]["model"] = str(args.model_dir or f"untrained {args.arch}")
            report["settings"]["quantize"] = args.quantize
            print(f"starting bentoml serve ({report['settings']['model']}) ...", flush=True)
            server = start_server(teacher_dir, model_dir if args.teacher_dir else None, args.threads, args.quantize,
                                  workdir, args.catalog)
            url = server.url
        two_tower = is_student(model_dir)
        # torch weights of the served model: its shape and FLOPs
        if two_tower:
            model, pair_encoder = load_student(model_dir)
            encoder = model.query_encoder
        else:
            own = load_ranker(model_dir)
            model, pair_encoder, encoder = own.model, own.pair_encoder, own.model.encoder
        naive_ranker = load_ranker(teacher_dir)  # the naive path runs the teacher
        served = load_scorer(model_dir, serving.runtime, report["settings"]["quantize"], args.threads)
        fp32_scorer = load_scorer(model_dir, serving.runtime, False, args.threads)
        enc_cfg = encoder.config
        report["settings"]["encoder"] = (f"{'two-tower student: ' if two_tower else ''}{enc_cfg.num_hidden_layers} "
                                         f"layers, hidden {enc_cfg.hidden_size}, FFN {enc_cfg.intermediate_size}, "
                                         f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params")
        report["settings"]["runtime"] = served.runtime
        report["settings"]["max_tokens"] = pair_encoder.max_length
        report["settings"]["naive"] = f"{teacher_dir} in torch fp32"
        report["settings"]["max_batch_size"] = serving.max_batch_size
        print(json.dumps(report, indent=1), flush=True)
        requests = workload(args.sizes, max(args.requests, args.naive_requests), args.seed)

        torch.set_num_threads(args.threads)
        batch = serving.max_batch_size  # as the server
        fp32 = RankingEngine(fp32_scorer, threads=args.threads, max_batch_size=batch)
        engine = RankingEngine(served, threads=args.threads, max_batch_size=batch) if served.quantized else fp32
        max_len = naive_max_length(naive_ranker)
        kind = "int8" if report["settings"]["quantize"] else "fp32"
        parsed = urlparse(url)
        report["http"], report["in_process"], report["naive"], report["speedup"] = {}, {}, {}, {}
        warm_products(lambda r: http_load(url, [json.dumps(r).encode()], 1), requests)
        for scorer_engine in {id(fp32): fp32, id(engine): engine}.values():
            warm_products(lambda r, e=scorer_engine: e.rank(r["query"], engine_candidates(r)), requests)
        for size in args.sizes:
            reqs = requests[size]
            bodies = [json.dumps({"query": r["query"], "candidates": r["candidates"]}).encode() for r in reqs]
            http_load(url, bodies[:3], 1)  # warm connections and the server's product cache path
            engine.rank(reqs[0]["query"], engine_candidates(reqs[0]))
            naive_score(naive_ranker, reqs[0], max_len)

            # 1. speed ratio: server over HTTP (c=1), optimised in-process and naive, interleaved
            # request by request so that other load on the machine hits all three alike
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)

            def over_http(r: dict, conn=conn) -> None:
                conn.request("POST", "/rank", body=json.dumps({"query": r["query"], "candidates": r["candidates"]}),
                             headers={"content-type": "application/json"})
                response = conn.getresponse()
                response.read()
                assert response.status == 200, response.status

            trio = timed_pair({"server": over_http,
                               "opt": lambda r: engine.rank(r["query"], engine_candidates(r)),
                               "naive": lambda r: naive_score(naive_ranker, r, max_len)}, reqs[: args.naive_requests])
            conn.close()
            for res in trio.values():
                res["pairs_s"] = res["req_s"] * size
            report["in_process"][f"rank@{size}"], report["naive"][f"rank@{size}"] = trio["opt"], trio["naive"]
            nai = trio["naive"]["pairs_s"]
            report["speedup"][f"rank@{size}"] = {"server_c1_vs_naive": trio["server"]["pairs_s"] / nai,
                                                 "in_process_vs_naive": trio["opt"]["pairs_s"] / nai}
            print(f"rank@{size:<3} interleaved x{args.naive_requests}: server ({kind}, HTTP, c=1) p50 "
                  f"{trio['server']['p50']:7.1f} ms | in-process optimised p50 {trio['opt']['p50']:7.1f} ms | naive "
                  f"(pad {max_len}, no sort, batch 32, fp32) p50 {trio['naive']['p50']:7.1f} ms -> server "
                  f"{trio['server']['pairs_s'] / nai:.2f}x naive, in-process {trio['opt']['pairs_s'] / nai:.2f}x",
                  flush=True)

            # 2. latency percentiles and throughput over HTTP at each concurrency
            for conc in args.concurrency:
                res = http_load(url, bodies[: args.requests], conc)
                res["pairs_s"] = res["req_s"] * size
                report["http"][f"rank@{size} c={conc}"] = res
                print(f"HTTP rank@{size:<3} c={conc}: p50 {res['p50']:7.1f}  p95 {res['p95']:7.1f}  p99 {res['p99']:7.1f} ms"
                      f"  {res['req_s']:7.1f} req/s  {res['pairs_s']:8.0f} pairs/s", flush=True)
            best = max(report["http"][f"rank@{size} c={c}"]["pairs_s"] for c in args.concurrency)
            report["speedup"][f"rank@{size}"]["server_best_concurrency_vs_naive"] = best / nai
        meta = json.loads(request(url, "GET", "/metadata")[1])
        if meta.get("search_index"):
            queries = [r["query"] for size in args.sizes for r in requests[size]][: args.requests]
            search_load(url, queries[:3], 100)  # warm the retrieval path
            res = report["http"]["search n=100 c=1"] = search_load(url, queries, 100)
            print(f"HTTP search n=100 c=1: p50 {res['p50']:7.1f}  p95 {res['p95']:7.1f}  p99 {res['p99']:7.1f} ms"
                  f"  (retrieval p50 {res['retrieval_ms_p50']:.1f} ms, p99 {res['retrieval_ms_p99']:.1f} ms)", flush=True)
        if server is not None:
            server.stop()  # free the CPU for the in-process measurements below
            server = None

        # 3. FLOPs vs measured matmul throughput
        big = max(args.sizes)
        h, f = enc_cfg.hidden_size, enc_cfg.intermediate_size
        peak = max(matmul_gflops(4096, h, f, args.threads), matmul_gflops(4096, f, h, args.threads),
                   matmul_gflops(2048, 2048, 2048, args.threads))
        fl_naive = flops_per_pair(naive_ranker, max_len)
        opt_pairs = report["in_process"][f"rank@{big}"]["pairs_s"]
        nai_pairs = report["naive"][f"rank@{big}"]["pairs_s"]
        if two_tower:
            fl = report["flops"] = student_flops(model_dir, requests[big][: args.naive_requests])
            served_flops = fl["mflops_per_pair_indexed"] * 1e6
            cold = timed_pair({"cold": lambda r: engine.rank(r["query"], engine_candidates(new_products(r, f"v{time.perf_counter_ns()}")))},
                              requests[big][: args.naive_requests])["cold"]
            report["in_process"][f"rank@{big} new products"] = cold
            print(f"FLOPs/pair: {fl['mflops_per_pair_indexed']:.2f} MFLOP with the product in the index (head + the "
                  f"query's {fl['query_tokens']:.1f}-token pass over {fl['candidates']:.0f} pairs), "
                  f"{fl['mflops_per_pair_new_product']:.1f} for a new product ({fl['product_tokens']:.1f} tokens); "
                  f"naive teacher {fl_naive / 1e6:.1f} ({max_len}). In-process rank@{big} with every product new: "
                  f"p50 {cold['p50']:.1f} ms, p99 {cold['p99']:.1f} ms", flush=True)
        else:
            real_len, padded_len = measured_lengths(fp32_scorer, requests[big][: args.naive_requests], engine.max_batch_size)
            served_flops = flops_per_pair(fp32_scorer, padded_len)
            fl = report["flops"] = {"real_tokens_per_pair": real_len, "padded_tokens_per_pair": padded_len,
                                    "mflops_per_pair_padded": served_flops / 1e6,
                                    "mflops_per_pair_real": flops_per_pair(fp32_scorer, real_len) / 1e6}
            print(f"FLOPs/pair: {fl['mflops_per_pair_real']:.1f} MFLOP at {real_len:.1f} real tokens, "
                  f"{fl['mflops_per_pair_padded']:.1f} at {padded_len:.1f} padded, {fl_naive / 1e6:.1f} naive ({max_len})",
                  flush=True)
        fl.update({"naive_tokens_per_pair": max_len, "mflops_per_pair_naive": fl_naive / 1e6,
                   "matmul_gflops_measured": peak, "optimised_gflops": opt_pairs * served_flops / 1e9,
                   "optimised_fraction_of_matmul": opt_pairs * served_flops / 1e9 / peak,
                   "naive_gflops": nai_pairs * fl_naive / 1e9, "naive_fraction_of_matmul": nai_pairs * fl_naive / 1e9 / peak,
                   "pairs_s_at_matmul_limit": peak * 1e9 / served_flops})
        print(f"measured fp32 matmul {peak:.1f} GFLOP/s ({args.threads} threads) -> optimised rank@{big} "
              f"{fl['optimised_gflops']:.2f} GFLOP/s = {100 * fl['optimised_fraction_of_matmul']:.1f}% of it, naive "
              f"{100 * fl['naive_fraction_of_matmul']:.0f}%; limit {fl['pairs_s_at_matmul_limit']:.0f} pairs/s", flush=True)

        # 4. int8 dynamic quantisation: speed and accuracy cost vs fp32
        q_engine = (engine if served.quantized else RankingEngine(
            load_scorer(model_dir, serving.runtime, True, args.threads), threads=args.threads, max_batch_size=batch))
        sample = [r for size in args.sizes for r in requests[size][: args.naive_requests]]
        ref = [fp32.rank(r["query"], engine_candidates(r)).scores["score"] for r in sample]
        q8 = [q_engine.rank(r["query"], engine_candidates(r)).scores["score"] for r in sample]
        acc = compare_rankings(ref, q8, k=10, gains=[r["gains"] for r in sample])
        reqs = requests[big][: args.naive_requests]
        speeds = timed_pair({"fp32": lambda r: fp32.rank(r["query"], engine_candidates(r)),
                             "int8": lambda r: q_engine.rank(r["query"], engine_candidates(r))}, reqs)
        q_speed = speeds["int8"]
        q_speed["pairs_s"] = q_speed["req_s"] * big
        report["int8"] = {"accuracy_vs_fp32": acc, f"rank@{big}": q_speed,
                          "speedup_vs_fp32": q_speed["req_s"] / speeds["fp32"]["req_s"]}
        print(f"int8: rank@{big} p50 {q_speed['p50']:.1f} ms ({report['int8']['speedup_vs_fp32']:.2f}x fp32); vs fp32 on "
              f"{int(acc['requests'])} requests: Pearson {acc['pearson']:.4f}, Spearman {acc['spearman']:.4f}, "
              f"top-10 overlap {acc['top10_overlap']:.3f}, NDCG@10 (true relevance) {acc['ndcg@10_reference']:.4f} -> "
              f"{acc['ndcg@10_candidate']:.4f} ({acc['ndcg@10_change']:+.4f})", flush=True)
        report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
        print(f"load average (1 min) at start {report['hardware']['load_average_1m']}, at end "
              f"{report['load_average_1m_at_end']}", flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2, default=float))
            print(f"written {args.out}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the temporary model store, logs and params


if __name__ == "__main__":
    main()
