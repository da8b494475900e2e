"""One typed configuration, loaded from ``params.yaml`` and validated at load time.

``params.yaml`` holds the default settings at the top level and named override sets under
``profiles``; the ``profile`` key selects one (``--profile`` on the command line overrides it; DVC
tracks the key and ``profiles.<profile>``, so pipelines switch profile with ``dvc exp run -S
profile=tiny`` and editing another profile reruns nothing). The
merged mapping is validated by pydantic with ``extra="forbid"``, so an unknown or
ill-typed key fails with a message that names its full dotted path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PARAMS_FILE = "params.yaml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftConfig(Section):
    """Knobs that shift the synthetic world, to demonstrate monitoring."""

    category_shift: float = Field(0.0, ge=0, le=1)  # share of traffic moved to one department
    new_vocabulary: float = Field(0.0, ge=0, le=1)  # share of queries using unseen slang
    new_products: float = Field(0.0, ge=0, le=1)  # share of catalogue replaced by new items
    price_shift: float = Field(0.0, ge=-0.9, le=5)  # relative price change


class WorldConfig(Section):
    """The simulated store used as the embedded default data set."""

    n_products: int = Field(20_000, ge=50)
    n_queries: int = Field(3_000, ge=10)
    n_sessions: int = Field(40_000, ge=10)
    list_size: int = Field(20, ge=2, le=200)  # results shown per search
    candidate_pool: int = Field(30, ge=2)  # distinct products the production ranker may show
    production_noise: float = Field(1.0, ge=0)  # noise of the logged ranker's scores
    position_bias: float = Field(1.0, ge=0)  # examination prob = position ** -position_bias
    click_base: float = Field(0.6, gt=0, le=1)  # click prob of an examined, perfect match
    add_to_cart_rate: float = Field(0.25, gt=0, le=1)  # mean P(add to cart | click)
    purchase_rate: float = Field(0.4, gt=0, le=1)  # mean P(purchase | add to cart)
    synonym_rate: float = Field(0.3, ge=0, le=1)
    abbreviation_rate: float = Field(0.2, ge=0, le=1)
    misspelling_rate: float = Field(0.1, ge=0, le=1)
    descriptive_rate: float = Field(0.15, ge=0, le=1)
    days: int = Field(28, ge=1)  # time span of the simulated log
    drift: DriftConfig = DriftConfig()


class FileSource(Section):
    path: str | None = None  # judgments or interactions table (CSV or Parquet)
    catalog: str | None = None  # catalogue table; optional for judgments


class HomeDepotSource(Section):
    path: str = "../shared/data/home-depot-search-relevance/train.csv.zip"
    min_distinct_grades: int = Field(2, ge=1)  # keep queries usable for NDCG


class BestBuySource(Section):
    dir: str = "../shared/data/bestbuy-small"
    negatives_per_query: int = Field(20, ge=1)  # unclicked catalogue items sampled per query


class DataConfig(Section):
    source: Literal["synthetic", "judgments", "interactions", "home_depot", "bestbuy"] = "synthetic"
    judgments: FileSource = FileSource()
    interactions: FileSource = FileSource()
    home_depot: HomeDepotSource = HomeDepotSource()
    bestbuy: BestBuySource = BestBuySource()
    # real sources: repair mojibake, U+FFFD and control characters as the text is read (data/repair.py)
    text_repair: Literal["none", "ftfy"] = "ftfy"


class SplitConfig(Section):
    method: Literal["query", "time"] = "query"
    valid_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)


class ValidationConfig(Section):
    max_example_rows: int = Field(5, ge=1)


class ScratchBertConfig(Section):
    """A small BERT trained from scratch with a domain WordPiece vocabulary."""

    vocab_size: int = Field(8_000, ge=200)
    hidden_size: int = Field(128, ge=16)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(512, ge=16)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ScratchBertConfig:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        return self


class PretrainConfig(Section):
    init: Literal["minilm", "scratch"] = "minilm"
    enabled: bool = True  # false = fine-tune the starting checkpoint directly (ablation)
    scratch: ScratchBertConfig = ScratchBertConfig()
    max_length: int = Field(64, ge=8, le=512)
    mask_prob: float = Field(0.15, gt=0, lt=1)
    whole_word_masking: bool = True
    steps: int = Field(600, ge=0)
    head_warmup_steps: int = Field(200, ge=0)  # MLM head only, encoder frozen: a fair "before" perplexity
    head_learning_rate: float = Field(2e-3, gt=0)  # the fresh head learns faster than the encoder
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    eval_texts: int = Field(512, ge=8)  # held-out texts for perplexity
    eval_every: int = Field(100, ge=1)
    max_texts: int = Field(100_000, ge=10)
    # share of each batch drawn from "query [SEP] most-engaged product" train pairs (0 = none)
    pair_share: float = Field(0.0, ge=0, lt=1)


class TaskConfig(Section):
    name: str
    label: str  # column of the interactions table holding the target
    kind: Literal["binary", "graded"] = "binary"


class FieldBudget(Section):
    """Token budget per product field in the cross-encoder input (0 drops the field)."""

    title: int = Field(24, ge=0)
    brand: int = Field(4, ge=0)
    category: int = Field(8, ge=0)
    attributes: int = Field(12, ge=0)
    description: int = Field(16, ge=0)


class TrainConfig(Section):
    architecture: Literal["shared_bottom", "mmoe", "ple"] = "mmoe"
    n_experts: int = Field(4, ge=1)  # shared experts (MMoE, PLE)
    task_experts: int = Field(1, ge=1)  # task-specific experts per task (PLE)
    expert_hidden: int = Field(256, ge=4)
    tower_hidden: int = Field(64, ge=4)
    dropout: float = Field(0.1, ge=0, lt=1)
    tasks: tuple[TaskConfig, ...] = (
        TaskConfig(name="click", label="clicks"),
        TaskConfig(name="add_to_cart", label="add_to_carts"),
        TaskConfig(name="purchase", label="purchases"),
    )
    chaining: bool = True  # ESMM: p(task k) = p(task k-1) * p(task k | task k-1)
    # add scale * cos(query, product) (the encoder used as a bi-encoder, mean-pooled) to each
    # task's logit: the ranker starts from the checkpoint's own similarity (models/multitask.py)
    similarity_prior: bool = False
    similarity_scale: float = Field(5.0, gt=0)  # initial scale; learned
    # numeric product columns fed to the head beside [CLS] (models/features.py)
    product_features: tuple[Literal["price", "rating"], ...] = ("price", "rating")
    listwise_loss: Literal["none", "listnet", "lambdaloss"] = "listnet"
    listwise_weight: float = Field(0.5, ge=0)
    task_weighting: Literal["fixed", "uncertainty"] = "uncertainty"
    task_weights: dict[str, float] = {}  # fixed weights; missing tasks weigh 1
    score_weights: dict[str, float] = {"click": 1.0, "add_to_cart": 2.0, "purchase": 4.0}
    query_max_tokens: int = Field(16, ge=1)
    fields: FieldBudget = FieldBudget()
    epochs: int = Field(1, ge=1)
    max_steps: int = Field(400, ge=0)  # 0 = no cap
    queries_per_batch: int = Field(2, ge=1)
    candidates_per_query: int = Field(16, ge=2)  # sampled per query per step
    learning_rate: float = Field(5e-5, gt=0)
    head_learning_rate: float = Field(1e-3, gt=0)  # experts, gates and towers start fresh
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)
    eval_every: int = Field(200, ge=1)
    # model selection includes the starting point (step 0): training never publishes a model that is
    # worse on validation than the one it started from (with the similarity prior: the bi-encoder)
    validate_at_start: bool = True
    patience: int = Field(3, ge=1)  # evaluations without validation NDCG gain before stopping
    checkpoint_every: int = Field(50, ge=1)
    # position-bias correction of logged engagement (training/propensity.py, docs/model.md):
    # tower = a position tower in training only (PAL), ipw = inverse-propensity-weighted targets
    position_debiasing: Literal["none", "tower", "ipw"] = "none"
    max_position: int = Field(20, ge=2)  # positions beyond share the last one's examination
    propensity_clip: float = Field(0.1, gt=0, le=1)  # ipw: propensities below count as this (weights <= 10)
    max_train_queries: int = Field(0, ge=0)  # 0 = all
    max_eval_queries: int = Field(200, ge=1)
    score_batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _tasks_consistent(self) -> TrainConfig:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"tasks must be a non-empty list of distinct names, got {names}")
        for key in (*self.score_weights, *self.task_weights):
            if key not in names:
                raise ValueError(f"weight given for unknown task {key!r}; tasks are {names}")
        if self.chaining and any(t.kind != "binary" for t in self.tasks):
            raise ValueError("chaining needs binary tasks only")
        if len(set(self.product_features)) != len(self.product_features):
            raise ValueError(f"product_features must name each feature once, got {list(self.product_features)}")
        return self


class DistillConfig(Section):
    """The ``distill`` stage: the two-tower student that serves, trained to reproduce the ranker
    (src/prodrank/training/distill.py, models/student.py). It inherits the teacher's encoder and
    product token budget; only the query budget is its own."""

    query_max_tokens: int = Field(16, ge=1)
    product_adapter_size: int = Field(384, ge=0)  # the trainable map over the frozen product vector; 0 = none
    pair_signals: bool = True  # exact-match and price-limit signals of each pair in the head's input
    max_queries: int = Field(0, ge=0)  # train queries whose lists the teacher labels; 0 = all
    hard_candidates: int = Field(4, ge=0)  # BM25 top products per query beyond the shown ones
    random_candidates: int = Field(2, ge=0)  # uniformly drawn catalogue products per query
    teacher_batch_size: int = Field(64, ge=1)
    teacher_int8: bool = False  # label with the teacher's encoder in dynamic int8 (faster; labels move slightly)
    epochs: int = Field(3, ge=1)
    queries_per_batch: int = Field(8, ge=1)
    learning_rate: float = Field(5e-5, gt=0)  # the encoder's
    head_learning_rate: float = Field(1e-3, gt=0)  # the head starts fresh
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    mse_weight: float = Field(0.1, ge=0)  # per-task log-odds MSE to the teacher
    listwise_weight: float = Field(1.0, ge=0)  # per-query listwise KL to the teacher, per task
    label_weight: float = Field(0.0, ge=0)  # BCE on the logged labels of the shown pairs

    @model_validator(mode="after")
    def _losses_valid(self) -> DistillConfig:
        if self.mse_weight + self.listwise_weight + self.label_weight == 0:
            raise ValueError("distill: at least one of mse_weight, listwise_weight, label_weight must be > 0")
        return self


class QualityGate(Section):
    minimum: dict[str, float] = {"click.ndcg@10": 0.3}  # metric key in metrics.json -> minimum value
    must_beat: tuple[str, ...] = ("random", "popularity")  # baselines the model must beat on `gate_metric`
    gate_metric: str = "click.ndcg@10"


class Ablation(Section):
    """One variant of the model, trained and evaluated beside the main one (`prodrank ablate`)."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    domain_pretraining: bool = True  # false: fine-tune the starting checkpoint without MLM
    train: dict[str, Any] = {}  # overrides of the `train` section, validated like it


class EvaluateConfig(Section):
    ks: tuple[int, ...] = (5, 10)
    bootstrap_samples: int = Field(1000, ge=10)
    baselines: tuple[str, ...] = ("random", "production", "popularity", "bm25", "minilm_biencoder", "lambdamart")
    max_test_queries: int = Field(0, ge=0)  # 0 = all
    quality_gate: QualityGate = QualityGate()
    ablations: tuple[Ablation, ...] = (
        Ablation(name="no_domain_pretraining", domain_pretraining=False),
        Ablation(name="shared_bottom", train={"architecture": "shared_bottom"}),
        Ablation(name="ple", train={"architecture": "ple"}),
        Ablation(name="no_chaining", train={"chaining": False}),
        Ablation(name="no_product_features", train={"product_features": []}),
        Ablation(name="single_task_click", train={"tasks": [{"name": "click", "label": "clicks"}], "chaining": False,
                                                  "score_weights": {"click": 1.0}}),
        Ablation(name="no_position_debiasing", train={"position_debiasing": "none"}),
    )


class ServingConfig(Section):
    """The BentoML ranking service (owned by src/prodrank/serving/)."""

    model_name: str = Field("prodrank-ranker", pattern=r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$")  # BentoML store name
    bentoml_home: str = ".bentoml"  # model store location when $BENTOML_HOME is unset (git-ignored)
    host: str = "127.0.0.1"  # loopback by default; expose deliberately
    port: int = Field(3000, ge=1, le=65535)
    max_candidates: int = Field(200, ge=1, le=10_000)
    max_body_bytes: int = Field(1_000_000, ge=1_000)
    max_query_chars: int = Field(500, ge=1)  # longer queries are cut (and flagged truncated)
    max_field_chars: int = Field(5_000, ge=1)  # longer product fields are cut (and flagged truncated)
    threads: int = Field(2, ge=1, le=256)  # intra-op threads of the scoring worker (ONNX Runtime or torch)
    # the distilled two-tower student (rank@100 in ~12 ms on two cores, above every baseline, below
    # its teacher on add-to-cart and purchase: docs/serving.md), or the trained ranker (~1 s)
    model: Literal["student", "teacher"] = "student"
    runtime: Literal["onnx", "torch"] = "onnx"  # onnx: the student's exported graph (a teacher serves in torch)
    quantize: bool = False  # dynamic int8 MatMuls (student: its query tower on ONNX; teacher: its encoder in torch)
    # pairs per forward pass: a request is scored in length-sorted batches of this many pairs,
    # each padded to its own longest pair (32 measured fastest for MiniLM on 2 cores; a whole
    # rank@100 as one pass pads more). BentoML adaptive (cross-request) batching is off on
    # purpose, see docs/serving.md "Scoring speed".
    max_batch_size: int = Field(32, ge=1, le=4096)
    request_timeout_s: float = Field(30.0, gt=0, le=600)  # BentoML traffic timeout
    max_concurrency: int = Field(32, ge=1)  # requests in flight before BentoML answers 503
    product_cache_size: int = Field(50_000, ge=10_000)  # tokenised products kept (>= max_candidates)
    max_tracked_requests: int = Field(50_000, ge=1)  # served request_ids /feedback accepts (~1 KB each)
    log_dir: str = "logs/serving"
    log_rotate_bytes: int = Field(50_000_000, ge=1_000)
    log_rotate_seconds: int = Field(3600, ge=1)
    log_fsync_seconds: float = Field(1.0, gt=0, le=60)  # most a machine crash can lose
    # API key: off by default; on, every request but the health probes needs the key held in the
    # environment variable `api_key_env` (a secret never lives in params.yaml or git)
    require_api_key: bool = False
    api_key_env: str = Field("PRODRANK_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class OrchestrationConfig(Section):
    """Prefect flows and scheduled retraining (owned by flows/ and src/prodrank/orchestration/;
    docs/orchestration.md)."""

    retries: int = Field(1, ge=0, le=10)  # retries of a stage after a transient failure
    retry_delay_seconds: float = Field(10.0, ge=0, le=3600)
    stage_timeout_seconds: float = Field(7200.0, gt=0)
    task_runner: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(2, ge=1, le=64)  # threads (or Dask workers) for parallel tasks
    schedule_cron: str = "0 3 * * *"
    schedule_timezone: str = "UTC"
    deployment_name: str = Field("scheduled", pattern=r"^[A-Za-z0-9_.-]+$")
    promotion_metric: str = Field("click.ndcg@10", pattern=r"^[^.]+\..+$")  # <task>.<metric> on the benchmark
    promotion_margin: float = Field(0.0, ge=0)  # challenger must beat the champion by this much
    incoming_dir: str = "data/incoming"  # new data drops land here
    datasets_dir: str = "datasets"  # accepted drops and the frozen benchmark, versioned with `dvc add`
    benchmark_max_queries: int = Field(0, ge=0)  # 0 = the whole frozen test split
    serving_logs: bool = True  # turn new serving request/feedback logs into a drop
    min_log_impressions: int = Field(200, ge=1)  # fewer new logged impressions: no drop from logs
    build_bento: bool = True  # `bentoml build` the challenger before promoting it (needs bentofile.yaml)
    prefect: Literal["auto", "on", "off"] = "auto"  # stages as flows: auto = when a server answers
    server_host: str = "127.0.0.1"  # `make prefect-server` / `make run`; loopback by default
    server_port: int = Field(4200, ge=1, le=65535)
    server_wait_seconds: float = Field(30.0, ge=0, le=600)  # a stage waits this long for a starting server

    @model_validator(mode="after")
    def _cron_has_five_fields(self) -> OrchestrationConfig:
        if len(self.schedule_cron.split()) not in (5, 6):
            raise ValueError(f"schedule_cron must have 5 fields (minute hour day month weekday), got {self.schedule_cron!r}")
        return self


DRIFT_METHODS = ("wasserstein", "jensenshannon", "psi", "hellinger", "kl_div", "ks", "chisquare", "z", "mannw",
                 "anderson", "cramer_von_mises", "t_test", "TVD", "fisher_exact", "g_test")


class DriftCheck(Section):
    """One Evidently drift test on one column: ``method`` (an Evidently stattest name), its
    ``threshold`` and the smallest effect worth an alarm. Without a threshold (the default) it is
    calibrated against the reference (``monitoring.false_alarm_rate``; docs/monitoring.md). With
    one, Evidently's rule: distance methods (wasserstein, jensenshannon, psi, hellinger, kl_div)
    flag drift when the distance is >= the threshold; p-value tests (ks, chisquare, ...) when p <= it.
    Either way drift also needs an effect of at least ``min_effect``: the Wasserstein distance in
    the column's own units for numbers, the total variation distance for categories."""

    method: Literal[DRIFT_METHODS] = "wasserstein"  # type: ignore[valid-type]
    threshold: float | None = Field(None, gt=0)
    min_effect: float = Field(0.0, ge=0)
    enabled: bool = True


def _num(min_effect: float = 0.0) -> DriftCheck:
    return DriftCheck(method="wasserstein", min_effect=min_effect)


def _cat(min_effect: float = 0.0) -> DriftCheck:
    return DriftCheck(method="jensenshannon", min_effect=min_effect)


SCORE_EFFECT = 0.02  # scores and probabilities: a shift below this is not worth retraining for


class DriftChecks(Section):
    """The drift checks, one per monitored column (docs/monitoring.md). Request-level columns have
    one value per request, candidate-level ones one per candidate."""

    # input drift
    query_chars: DriftCheck = _num()  # request: query length in characters
    query_tokens: DriftCheck = _num()  # request: WordPiece tokens of the query (the served model's tokenizer)
    query_oov_share: DriftCheck = _num()  # request: share of query words outside the reference vocabulary
    candidate_count: DriftCheck = _num()  # request
    category: DriftCheck = _cat()  # candidate: catalogue category ("(unknown)" when not in monitoring.catalogs)
    brand: DriftCheck = _cat()  # candidate
    price: DriftCheck = _num()  # candidate: the price sent with the request
    rating: DriftCheck = _num()  # candidate: the rating sent with the request
    unseen_product: DriftCheck = _cat()  # candidate: "new" when the id is not in the reference catalogue
    # prediction drift
    score: DriftCheck = _num(SCORE_EFFECT)  # candidate: sum_t w_t p_t
    p_click: DriftCheck = _num(SCORE_EFFECT)  # candidate: one per task of the model (p_<task>); tasks missing here use _num()
    p_add_to_cart: DriftCheck = _num(SCORE_EFFECT)
    p_purchase: DriftCheck = _num(SCORE_EFFECT)
    top1_score: DriftCheck = _num(SCORE_EFFECT)  # request: score of the rank-1 result
    score_gap: DriftCheck = _num(SCORE_EFFECT)  # request: score at rank 1 - score at rank gap_k


class QualityCheck(Section):
    """Ranking quality from feedback (Evidently NDCG / MRR / HitRate at ``k``, per task)."""

    k: int = Field(5, ge=1)  # NDCG@k, MRR@k, HitRate@k (HitRate@k is 1 by construction when k >= the shown list)
    max_drop: float = Field(0.1, ge=0)  # drift when current < reference * (1 - max_drop) (reference with feedback)
    alpha: float = Field(0.01, gt=0, lt=1)  # ... and significant (one-sided Welch t-test, p < alpha / number of checks)
    minimum: dict[str, float] = {}  # e.g. {click.ndcg: 0.3}: drift when current is below, whatever the reference
    min_requests_with_feedback: int = Field(30, ge=1)  # fewer: quality is reported but gives no verdict


class RetrainTrigger(Section):
    """How a drift verdict triggers retraining (``action: trigger``)."""

    via: Literal["flow", "command"] = "flow"  # the retrain Prefect flow in-process, or a command
    command: tuple[str, ...] = ("prodrank", "retrain", "--logs")  # via: command
    use_serving_logs: bool = True  # via: flow -> retrain(use_serving_logs=...)
    force: bool = False  # via: flow -> retrain(force=...): re-run the pipeline even without new data
    cooldown_hours: float = Field(24.0, ge=0)  # no second trigger within this time (reports/drift/trigger.json)


class MonitoringConfig(Section):
    """Drift monitoring of the serving log with Evidently (owned by src/prodrank/monitoring/;
    docs/monitoring.md)."""

    log_dir: str | None = None  # serving log to monitor; default: serving.log_dir
    reports_dir: str = "reports/drift"  # <window>.html / <window>.json
    reference: Literal["evaluation", "log"] = "evaluation"  # test-split predictions, or a window of the log
    reference_start: str | None = None  # reference: log -> [start, end) of the reference window (UTC)
    reference_end: str | None = None
    predictions: str = "reports/evaluation/predictions.parquet"  # reference: evaluation
    catalogs: tuple[str, ...] = ("data/prepared/catalog.parquet", "logs/simulator/catalog.parquet")  # first: training catalogue
    max_requests: int = Field(20_000, ge=100)  # a larger window is sampled (uniformly, by request_id hash)
    min_requests: int = Field(500, ge=1)  # fewer in either window: no verdict ("insufficient data"); see docs
    gap_k: int = Field(10, ge=2)  # score gap = score at rank 1 - score at rank gap_k (or the last rank)
    top_k: int = Field(10, ge=1)  # "top-k changed" between two models compares these sets
    topk_requests: int = Field(200, ge=1)  # current requests rescored with the other model for it
    seed: int = 0  # sampling
    # whose requests a window holds: /search always ranks n retrieved candidates, so its traffic
    # is compared with a reference of /search traffic (reference: log), never with /rank's
    endpoint: Literal["rank", "search"] = "rank"
    action: Literal["report", "trigger"] = "report"  # on drift: report only, or trigger the retrain flow
    trigger_on: tuple[Literal["input", "prediction", "quality"], ...] = ("input", "prediction", "quality")
    min_drifted_checks: int = Field(1, ge=1)  # drift verdict: at least this many checks in trigger_on drifted
    checks: DriftChecks = DriftChecks()
    false_alarm_rate: float = Field(0.01, gt=0, lt=1)  # calibrated checks: P(a window without drift alarms), Bonferroni
    calibration_resamples: int = Field(300, ge=20)  # cluster-bootstrap resamples of the reference per check
    topk_changed_share: float = Field(0.5, gt=0, le=1)  # share of requests whose top-k changed (two models)
    quality: QualityCheck = QualityCheck()
    retrain: RetrainTrigger = RetrainTrigger()


class RuntimeConfig(Section):
    threads: int = Field(2, ge=1)


class Config(Section):
    profile: str = "default"
    seed: int = 13
    runtime: RuntimeConfig = RuntimeConfig()
    data: DataConfig = DataConfig()
    world: WorldConfig = WorldConfig()
    split: SplitConfig = SplitConfig()
    validation: ValidationConfig = ValidationConfig()
    pretrain: PretrainConfig = PretrainConfig()
    train: TrainConfig = TrainConfig()
    distill: DistillConfig = DistillConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    serving: ServingConfig = ServingConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    @model_validator(mode="after")
    def _ablations_valid(self) -> Config:
        names = [a.name for a in self.evaluate.ablations]
        if len(set(names)) != len(names):
            raise ValueError(f"evaluate.ablations: names must be distinct, got {names}")
        for ablation in self.evaluate.ablations:
            try:
                ablation_train(self.train, ablation)
            except ValidationError as err:
                bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
                raise ValueError(f"evaluate.ablations[{ablation.name}].train: {bad}") from None
        return self


def ablation_train(base: TrainConfig, ablation: Ablation) -> TrainConfig:
    """The train section of an ablation: the base section with the ablation's overrides."""
    return TrainConfig.model_validate(_merge(base.model_dump(), ablation.train, TrainConfig))


class ConfigError(ValueError):
    """params.yaml is malformed; the message names each bad key."""


def _merge(base: dict[str, Any], override: dict[str, Any], section: type[BaseModel]) -> dict[str, Any]:
    """Overlay a profile on the defaults: sections merge key by key, values (numbers,
    lists, and plain mappings such as ``score_weights``) are replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        field = section.model_fields.get(key)
        sub = field.annotation if field is not None else None
        if isinstance(sub, type) and issubclass(sub, Section) and isinstance(value, dict):
            merged[key] = _merge(merged.get(key) or {}, value, sub)
        else:
            merged[key] = value
    return merged


def resolve(raw: dict[str, Any], profile: str | None = None) -> Config:
    """Apply the selected profile's overrides to ``raw`` and validate the result."""
    raw = dict(raw)
    profiles = raw.pop("profiles", {}) or {}
    name = profile or raw.get("profile", "default")
    if name in profiles:
        raw = _merge(raw, profiles[name] or {}, Config)
    elif name != "default":  # the top-level settings themselves; a profiles.default entry is optional
        raise ConfigError(f"profile: unknown profile {name!r}; known: {sorted({'default', *profiles})}")
    raw["profile"] = name
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"])
            if where:
                got = f" (got {e['input']!r})" if e["type"] != "missing" else ""
                lines.append(f"  {where}: {e['msg']}{got}")
            else:  # a check across fields names its keys in the message itself
                lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"invalid {PARAMS_FILE}:\n" + "\n".join(lines)) from None


def load_config(path: str | Path = PARAMS_FILE, profile: str | None = None) -> Config:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return resolve(raw, profile)
