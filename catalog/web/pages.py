"""The gallery's HTML pages: search (home), one media item, statistics and failures."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from catalog.errors import NotFoundError, QueryError, UsageError
from catalog.web import views

PAGE_SIZE = 48


def install_filters(templates: Jinja2Templates) -> None:
    """Template filters for sizes, confidences and dates."""
    from catalog.render.writers import format_bytes, format_confidence

    env = templates.env
    env.filters["bytes"] = format_bytes
    env.filters["percent"] = format_confidence
    env.filters["seconds"] = lambda ms: f"{(ms or 0) / 1000:g}s"
    env.filters["date"] = lambda value: f"{value:%Y-%m-%d %H:%M}" if value else ""
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["quote_name"] = views.quote_name


def routes(gallery: Any) -> list[BaseRoute]:
    """The page routes."""

    def page(
        handler: Callable[[Any, Request], tuple[str, dict[str, Any], int]],
    ) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            name, context, status = handler(gallery, request)
            return gallery.templates.TemplateResponse(  # type: ignore[no-any-return]
                request, name, {"nav": name.split(".")[0], **context}, status_code=status
            )

        return endpoint

    return [
        Route("/", page(search_page), methods=["GET"]),
        Route("/media/{media_id:int}", page(media_page), methods=["GET"]),
        Route("/stats", page(stats_page), methods=["GET"]),
        Route("/failures", page(failures_page), methods=["GET"]),
    ]


def search_page(gallery: Any, request: Request) -> tuple[str, dict[str, Any], int]:
    """Home: the query box, the exact count, a page of thumbnails, sort, paging and facets."""
    from catalog.query.compiled import SORTS
    from catalog.read.pages import search_page as run_search_page

    query = request.query_params.get("q", "")
    sort = request.query_params.get("sort", "newest")
    after = request.query_params.get("after") or None
    context: dict[str, Any] = {"query": query, "sort": sort, "sorts": SORTS, "after": after}
    status = 200
    try:
        with gallery.sessions() as session:
            result = run_search_page(session, query, sort=sort, limit=PAGE_SIZE, after=after)
        context["page"] = result
        context["cards"] = [views.card(hit) for hit in result.hits]
    except QueryError as exc:
        context["error"] = views.query_error(query, exc)
        status = 400
    except UsageError as exc:
        context["error"] = views.QueryErrorView(exc.message, None, None)
        status = 400
    return "search.html", context, status


def media_page(gallery: Any, request: Request) -> tuple[str, dict[str, Any], int]:
    """One item: the picture or player with its boxes, every label, and where they came from."""
    from catalog.read.details import get_media_detail
    from catalog.store.reads import latest_result

    media_id = int(request.path_params["media_id"])
    with gallery.sessions() as session:
        row = views.find_media(session, media_id)
        detail = get_media_detail(session, row.uri)
        provenance = latest_result(session, media_id)
    context = {
        "media_id": media_id,
        "detail": detail,
        "name": views.display_name(row.key, row.source),
        "provenance": provenance,
        "labels": views.media_labels(detail),
        "timeline": views.timeline(detail) if detail.kind == "video" else None,
    }
    return "media.html", context, 200


def stats_page(gallery: Any, request: Request) -> tuple[str, dict[str, Any], int]:
    """What `catalog stats` reports, drawn as SVG bar charts, with a --where query box."""
    from catalog.read.breakdowns import label_spread
    from catalog.read.stats import library_stats, matching_media

    where = request.query_params.get("where", "")
    label = request.query_params.get("label") or None
    context: dict[str, Any] = {"where": where, "label": label}
    try:
        with gallery.sessions() as session:
            subset = matching_media(where, session)
            result = library_stats(session, top=20, where=where or None, subset=subset)
            # A label's spread groups all its media (seconds for a label on most of a million
            # items), so it is drawn when a label is picked, as `catalog stats --label` does.
            spread = label_spread(session, label, subset=subset) if label else None
    except QueryError as exc:
        context["error"] = views.query_error(where, exc)
        return "stats.html", context, 400
    except NotFoundError as exc:
        context["error"] = views.QueryErrorView(exc.message, None, None)
        return "stats.html", context, 404
    context.update(views.stats_charts(result, spread))
    context["stats"] = result
    context["spread"] = spread
    return "stats.html", context, 200


def failures_page(gallery: Any, request: Request) -> tuple[str, dict[str, Any], int]:
    """Failed media with code and message, filterable by code, with the retry command."""
    from catalog.read.details import iter_failures
    from catalog.read.stats import failures_by_reason

    code = request.query_params.get("code") or None
    with gallery.sessions() as session:
        reasons = failures_by_reason(session)
        failures = [f for f in iter_failures(session) if code is None or f.code == code]
    context = {
        "code": code,
        "reasons": reasons,
        "failures": failures,
        "retry_commands": retry_commands(f.uri for f in failures),
    }
    return "failures.html", context, 200


def retry_commands(uris: Any) -> list[str]:
    """One `catalog sync ... --retry-failed` line per bucket or local folder that failed."""
    import shlex

    roots: dict[str, None] = {}
    folders: list[str] = []
    for uri in uris:
        if uri.startswith("s3://"):
            roots.setdefault("s3://" + uri[5:].split("/", 1)[0] + "/", None)
        else:
            folders.append(os.path.dirname(uri.removeprefix("file://")))
    if folders:
        roots.setdefault(os.path.commonpath(folders), None)
    return [f"catalog sync {shlex.quote(root)} --retry-failed" for root in roots]
