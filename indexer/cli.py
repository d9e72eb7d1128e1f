"""The ops command line: load, reindex, train, evaluate, status, serve."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from indexer.config import BACKENDS, Settings, make_backend
from indexer.search.base import IndexBuildError, SearchError
from indexer.sources import IngestError

log = logging.getLogger("indexer")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.backend:
        overrides["search_backend"] = args.backend
    return Settings().with_overrides(**overrides)


def cmd_load(args: argparse.Namespace) -> int:
    """Read catalog and interaction files, embed them, make them the catalog."""
    from indexer.embeddings import Embedder
    from indexer.pipeline import is_loaded, load_catalog, loaded_sources

    settings = _settings(args)
    options = {"mapping": args.mapping, "keep_missing": args.keep_missing}
    if args.keep_other:
        served = loaded_sources(settings)
        wanted = [os.path.abspath(path) for path in args.sources]
        if served and served != wanted:
            log.info(
                "%s serves a catalog loaded from %s; leaving it as it is (load "
                "without --keep-other to replace it)",
                settings.data_dir,
                ", ".join(served),
            )
            return 0
    if args.if_changed and is_loaded(settings, args.sources, **options):
        log.info(
            "%s already loaded and unchanged; nothing to do", ", ".join(args.sources)
        )
        return 0
    report = load_catalog(
        settings, args.sources, Embedder(), allow_shrink=args.allow_shrink, **options
    )
    print(report.summary())
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild the search index from the stored catalog, then swap it in."""
    from indexer.embeddings import Embedder
    from indexer.store import CatalogStore

    settings = _settings(args)
    store = CatalogStore(settings.catalog_path)
    try:
        products = store.products()
        if not products:
            raise IngestError("the catalog is empty; load one first")
        vectors, _ = Embedder().embed_products(products, store)
    finally:
        store.close()
    backend = make_backend(settings)
    info = backend.build(products, vectors)
    print(f"reindexed {info.documents} products into {info.index} ({info.backend})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train the collaborative model and popularity signals."""
    from dataclasses import replace

    from indexer.pipeline import is_trained, train_models, tune_recipe
    from recs.hybrid import HybridConfig
    from web.db import ShopDatabase

    settings = _settings(args)
    if args.if_stale and is_trained(settings):
        log.info("the model is newer than the catalog; nothing to do")
        return 0
    overrides = {
        name: value
        for name, value in (("factors", args.factors), ("iterations", args.iterations))
        if value is not None
    }
    # A bad recipe or override is refused here, before any tuning, training
    # or saving.
    replace(HybridConfig(), **overrides)
    if args.config:
        recipe = HybridConfig.load(args.config)
    elif args.tune:
        recipe = tune_recipe(settings)
    else:
        recipe = HybridConfig()
    recipe = replace(recipe, **overrides)
    feedback = []
    if os.path.exists(settings.shop_db_path):
        shop_db = ShopDatabase(settings.shop_db_path)
        feedback = shop_db.all_interactions()
        shop_db.close()
    version = train_models(settings, recipe.training_params(), feedback, recipe)
    print(f"trained model {version} ({len(feedback)} shop feedback events included)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show the serving index, the catalog and the model."""
    from indexer.store import CatalogStore
    from recs.model_store import ModelStore, ModelUnusable

    settings = _settings(args)
    backend = make_backend(settings)
    try:
        info = backend.status()
        index = {
            "backend": info.backend,
            "alias": info.alias,
            "index": info.index,
            "documents": info.documents,
            "health": info.health,
            **info.details,
        }
    except SearchError as exc:
        index = {"backend": settings.search_backend, "error": str(exc)}
    finally:
        backend.close()
    catalog = {
        "path": settings.catalog_path,
        "exists": os.path.exists(settings.catalog_path),
    }
    if catalog["exists"]:
        store = CatalogStore(settings.catalog_path)
        catalog.update(
            products=store.count("products"),
            interactions=store.count("interactions"),
            cached_embeddings=store.count("embedding_cache"),
            source=store.get_meta("source"),
        )
        loaded_at = store.get_meta("loaded_at")
        if loaded_at:
            catalog["loaded_at"] = time.strftime(
                "%Y-%m-%d %H:%M:%S", time.localtime(float(loaded_at))
            )
        store.close()
    models = ModelStore(settings.models_dir)
    status = {"index": index, "catalog": catalog, "model": models.current_version()}
    try:
        if models.load() is None:
            status["model_problem"] = "no trained model; run: python -m indexer train"
    except ModelUnusable as exc:
        status["model_problem"] = str(exc)
    if "model_problem" in status:
        log.warning(
            "%s; the shop serves content and popularity recommendations only",
            status["model_problem"],
        )
    print(json.dumps(status, indent=2))
    return 0 if "error" not in index else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Offline evaluation of every recommender on a temporal split."""
    from recs.evaluation import evaluate, load_files, load_store
    from recs.hybrid import HybridConfig
    from recs.report import headline, write_report

    # A bad recipe is refused before the history is read.
    config = HybridConfig.load(args.config) if args.config else None
    settings = _settings(args)
    if args.sources:
        os.makedirs(settings.data_dir, exist_ok=True)
        cache = os.path.join(settings.data_dir, "evaluation-embeddings.sqlite")
        data = load_files(args.sources, cache, args.name, args.mapping)
    else:
        data = load_store(settings, args.name)
    result = evaluate(data, args.top_k, config, tune_config=not args.no_tune)
    folder = write_report(result, args.out, args.sources)
    print(result.table())
    print()
    print(headline(result))
    print(f"report written to {folder}")
    return 0


def _existing_file(path: str, what: str) -> None:
    """Refuse, naming ``path``, a ``what`` file that is missing or a folder."""
    if os.path.isdir(path):
        raise ValueError(f"{what} {path}: is a folder, not a file")
    if not os.path.isfile(path):
        raise ValueError(f"{what} {path}: no such file")


def cmd_eval_search(args: argparse.Namespace) -> int:
    """Score keyword, semantic and hybrid search against human judgments."""
    from indexer.relevance import SEARCH_MODES, evaluate_search, report

    # Checked up front: a missing file must not surface after a long load.
    _existing_file(args.judgments, "judgments")
    _existing_file(args.mapping, "mapping")
    if not args.no_load:
        _existing_file(args.catalog, "catalog")
    settings = _settings(args)
    backends = args.backends or [settings.search_backend]
    runs = evaluate_search(
        settings,
        args.catalog,
        args.judgments,
        args.mapping,
        backends,
        modes=args.modes or SEARCH_MODES,
        load=not args.no_load,
        tune=args.tune,
        out_dir=args.out,
        limit=args.limit,
    )
    print(report(runs))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the shop and the API with gunicorn."""
    from gunicorn.app.base import BaseApplication

    from web import create_app

    settings = _settings(args).with_overrides(port=args.port)
    # Refuse before binding the port, not later inside a worker.
    from web import check_secret_key

    check_secret_key(settings)

    class ShopServer(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 120)

        def load(self):
            from threadpoolctl import threadpool_limits

            from indexer.embeddings import Embedder

            # Each request is small and the worker threads already fill the
            # cores: numerical libraries must not start threads of their own.
            threadpool_limits(1)
            return create_app(settings, embedder=Embedder(threads=1))

    print(f"serving the shop at http://{args.host}:{args.port}/", flush=True)
    ShopServer().run()
    return 0


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"ports run from 1 to 65535, got {port}")
    return port


def positive_int(text: str) -> int:
    """A whole number of 1 or more."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    parser.add_argument(
        "--data-dir", help="state directory (default: $DATA_DIR or var)"
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, help="search backend (default: $SEARCH_BACKEND)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    load = commands.add_parser("load", help=cmd_load.__doc__)
    load.add_argument(
        "sources",
        nargs="+",
        metavar="FILE",
        help="retail export CSV, Amazon meta_/reviews/ratings files, or generic "
        "catalog and interactions files with --mapping; plain, .gz or .zip",
    )
    load.add_argument("--mapping", help="JSON file naming the columns of generic files")
    load.add_argument(
        "--keep-missing",
        action="store_true",
        help="keep products no longer in the files, marked unavailable",
    )
    load.add_argument(
        "--if-changed",
        action="store_true",
        help="skip when these exact files are loaded",
    )
    load.add_argument(
        "--keep-other",
        action="store_true",
        help="skip when the catalog served was loaded from other files",
    )
    load.add_argument(
        "--allow-shrink",
        action="store_true",
        help="allow a load that removes more than half of the products served",
    )
    load.set_defaults(func=cmd_load)

    reindex = commands.add_parser("reindex", help=cmd_reindex.__doc__)
    reindex.set_defaults(func=cmd_reindex)

    train = commands.add_parser("train", help=cmd_train.__doc__)
    train.add_argument("--factors", type=positive_int, help="ALS factors (recipe's)")
    train.add_argument(
        "--iterations", type=positive_int, help="ALS iterations (recipe's)"
    )
    recipe = train.add_mutually_exclusive_group()
    recipe.add_argument(
        "--config",
        help="config.json of an evaluation: the tuned recipe to train and serve",
    )
    recipe.add_argument(
        "--tune",
        action="store_true",
        help="tune the recipe on the newest tenth of the history first",
    )
    train.add_argument(
        "--if-stale", action="store_true", help="skip when the model is up to date"
    )
    train.set_defaults(func=cmd_train)

    status = commands.add_parser("status", help=cmd_status.__doc__)
    status.set_defaults(func=cmd_status)

    evaluate = commands.add_parser("evaluate", help=cmd_evaluate.__doc__)
    evaluate.add_argument(
        "sources",
        nargs="*",
        metavar="FILE",
        help="shop files to evaluate on, as for load (default: the loaded catalog)",
    )
    evaluate.add_argument("--mapping", help="JSON file naming the columns")
    evaluate.add_argument("--top-k", type=int, default=10)
    evaluate.add_argument("--name", help="dataset name in the report folder's name")
    evaluate.add_argument(
        "--out", default="reports", help="parent folder of the report (reports)"
    )
    evaluate.add_argument(
        "--config", help="config.json of an earlier evaluation, used as the start"
    )
    evaluate.add_argument(
        "--no-tune",
        action="store_true",
        help="score the given (or default) configuration without tuning it",
    )
    evaluate.set_defaults(func=cmd_evaluate)

    eval_search = commands.add_parser("eval-search", help=cmd_eval_search.__doc__)
    eval_search.add_argument("catalog", help="the product titles to search")
    eval_search.add_argument(
        "judgments", help="CSV of search_term, product_uid, relevance (1 to 3)"
    )
    eval_search.add_argument(
        "--mapping", required=True, help="JSON file naming the catalog's columns"
    )
    eval_search.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        help="backends to compare (default: the configured one)",
    )
    eval_search.add_argument(
        "--modes", nargs="+", choices=("keyword", "semantic", "hybrid")
    )
    eval_search.add_argument(
        "--no-load", action="store_true", help="query the serving index as it is"
    )
    eval_search.add_argument(
        "--tune",
        action="store_true",
        help="choose the fusion and the hybrid ranker's weights on the tuning split",
    )
    eval_search.add_argument("--out", help="per-query results directory")
    eval_search.add_argument(
        "--limit",
        type=positive_int,
        help="only the first N queries in alphabetical order (quick checks)",
    )
    eval_search.set_defaults(func=cmd_eval_search)

    serve = commands.add_parser("serve", help=cmd_serve.__doc__)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port", type=port_number, default=os.environ.get("PORT", "8000")
    )
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--threads", type=int, default=8)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP call to Elasticsearch drowns the step summaries, and
    # each failed try logs a traceback; our own errors name the failure once.
    logging.getLogger("elastic_transport").setLevel(
        logging.DEBUG if args.verbose else logging.ERROR
    )
    try:
        return args.func(args)
    except (IngestError, IndexBuildError, SearchError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
