"""The JSON API: the CLI's `--format json` output, byte for byte, from the same serialisers.

`/api/search?q=Q&limit=N` is `catalog search Q --format json --limit N`, `/api/stats` is
`catalog stats --format json`, `/api/media?uri=URI` is `catalog show URI --format json`.
A malformed query is HTTP 400 with {"error": <the CLI's one-line message>}.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from catalog.errors import AWSError, CatalogError, NotFoundError, QueryError, UsageError

JSON_TYPE = "application/json; charset=utf-8"
SEARCH_LIMIT_DEFAULT = 50
STREAM_ABOVE = 1000  # larger answers stream, STREAM_BATCH records per chunk
STREAM_BATCH = 500


def routes(gallery: Any) -> list[BaseRoute]:
    """The /api routes."""

    def bind(handler: Any) -> Any:
        return lambda request: handler(gallery, request)

    return [
        Route("/api/search", bind(search_json), methods=["GET"]),
        Route("/api/count", bind(count_json), methods=["GET"]),
        Route("/api/facets", bind(facets_json), methods=["GET"]),
        Route("/api/labels", bind(labels_json), methods=["GET"]),
        Route("/api/stats", bind(stats_json), methods=["GET"]),
        Route("/api/media", bind(media_json), methods=["GET"]),
        Route("/api/failures", bind(failures_json), methods=["GET"]),
    ]


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"'{name}' must be a whole number (got '{raw}')") from None
    if not low <= value <= high:
        raise UsageError(f"'{name}' must be between {low} and {high} (got {value})")
    return value


def _hint_header(hints: list[str]) -> dict[str, str]:
    """Hints ride in a header so the body stays the CLI's list (JSON-escaped: headers are ASCII)."""
    return {"x-catalog-hints": json.dumps(hints)} if hints else {}


def search_json(gallery: Any, request: Request) -> Response:
    """`catalog search Q --format json --limit N [--sort S]`; limit 0 streams every match."""
    from catalog.read.search import search
    from catalog.render.writers import json_chunks

    query = request.query_params.get("q", "")
    limit = _int_param(request, "limit", SEARCH_LIMIT_DEFAULT, 0, 1_000_000_000)
    sort = request.query_params.get("sort", "newest")
    if 0 < limit <= STREAM_ABOVE:  # one body: no thread hop per record
        with gallery.sessions() as session:
            result = search(session, query, limit=limit, sort=sort)
            body = "".join(json_chunks(hit.to_dict() for hit in result.hits))
        return Response(body, media_type=JSON_TYPE, headers=_hint_header(result.hints))
    session = gallery.sessions()
    try:
        result = search(session, query, limit=limit or None, sort=sort)
    except BaseException:
        session.close()
        raise

    def batches() -> Iterator[str]:
        try:
            chunk: list[str] = []
            for text in json_chunks(hit.to_dict() for hit in result.hits):
                chunk.append(text)
                if len(chunk) >= STREAM_BATCH:
                    yield "".join(chunk)
                    chunk = []
            yield "".join(chunk)
        finally:
            session.close()

    return StreamingResponse(batches(), media_type=JSON_TYPE, headers=_hint_header(result.hints))


def count_json(gallery: Any, request: Request) -> Response:
    """`catalog search Q --count --format json`."""
    from catalog.read.search import count_matches

    with gallery.sessions() as session:
        counted = count_matches(session, request.query_params.get("q", ""))
    body = json.dumps({"query": counted.query, "count": counted.count}) + "\n"
    return Response(body, media_type=JSON_TYPE, headers=_hint_header(counted.hints))


def facets_json(gallery: Any, request: Request) -> Response:
    """The result set's total, kinds, top labels and prefixes."""
    from catalog.read.facets import facets

    top = _int_param(request, "top", 20, 1, 200)
    with gallery.sessions() as session:
        found = facets(session, request.query_params.get("q") or None, top=top)
    return JSONResponse(asdict(found))


def labels_json(gallery: Any, request: Request) -> Response:
    """`catalog labels PATTERN --format json --limit N` (the autocomplete's source)."""
    from catalog.read.labels import list_labels
    from catalog.render.writers import json_chunks

    limit = _int_param(request, "limit", 0, 0, 100_000)
    with gallery.sessions() as session:
        labels = list_labels(session, request.query_params.get("q") or None)
    shown = labels[:limit] if limit else labels
    body = "".join(json_chunks(label.to_dict() for label in shown))
    return Response(body, media_type=JSON_TYPE)


def stats_json(gallery: Any, request: Request) -> Response:
    """`catalog stats [--where Q] [--label L] [--top N] [--prefix-depth D] --format json`."""
    from catalog.read.stats import library_stats
    from catalog.render.writers import json_object_text

    top = _int_param(request, "top", 20, 1, 10_000)
    depth = _int_param(request, "prefix_depth", 1, 1, 100)
    with gallery.sessions() as session:
        result = library_stats(
            session,
            top=top,
            label=request.query_params.get("label") or None,
            where=request.query_params.get("where") or None,
            prefix_depth=depth,
        )
    return Response(json_object_text(result.to_dict()), media_type=JSON_TYPE)


def media_json(gallery: Any, request: Request) -> Response:
    """`catalog show URI --format json`."""
    from catalog.read.details import get_media_detail
    from catalog.render.writers import json_object_text

    uri = request.query_params.get("uri")
    if not uri:
        raise UsageError("give the media item as ?uri=s3://BUCKET/KEY or ?uri=file:///PATH")
    with gallery.sessions() as session:
        detail = get_media_detail(session, uri)
    return Response(json_object_text(detail.to_dict()), media_type=JSON_TYPE)


def failures_json(gallery: Any, request: Request) -> Response:
    """`catalog failures --format json`, optionally only one error `code`."""
    from catalog.read.details import iter_failures
    from catalog.render.writers import json_chunks

    code = request.query_params.get("code") or None
    with gallery.sessions() as session:
        rows = [f.to_dict() for f in iter_failures(session) if code is None or f.code == code]
    return Response("".join(json_chunks(rows)), media_type=JSON_TYPE)


def exception_handlers(gallery: Any) -> dict[Any, Any]:
    """CatalogError -> one-line JSON (API) or a small HTML error page, never a traceback."""

    def status_of(exc: CatalogError) -> int:
        if isinstance(exc, QueryError | UsageError):
            return 400
        if isinstance(exc, NotFoundError):
            return 404
        if isinstance(exc, AWSError):
            return 502
        return 500

    def catalog_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CatalogError)
        status = status_of(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.message}, status_code=status)
        return gallery.templates.TemplateResponse(  # type: ignore[no-any-return]
            request, "error.html", {"nav": "", "message": exc.message}, status_code=status
        )

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return PlainTextResponse(exc.detail, status_code=exc.status_code)

    return {CatalogError: catalog_error, HTTPException: http_error}
