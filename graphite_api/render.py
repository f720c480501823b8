"""`/render`: parse targets and times, evaluate, consolidate to maxDataPoints, encode."""
from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response

from . import consolidation, render_formats
from .evaluator import EvalContext, evaluate_targets
from .fetch import FetchContext, FetchLimitError
from .functions.registry import FunctionError
from .http_util import BadRequest, blocking, flag, get_list, read_params, text_error
from .target.glob import GlobError
from .target.grammar import TargetSyntaxError, parse_target
from .target.tagexpr import TagExpressionError
from .timeparse import TimeParseError, parse_time
from storage.matchers import BadRegex

USER_ERRORS = (FunctionError, TargetSyntaxError, TimeParseError, GlobError, TagExpressionError, BadRegex,
               FetchLimitError)


def parse_window(params, now_default: float | None = None) -> tuple[int, int, int, str | None]:
    tz = params.get("tz") or None
    now_text = params.get("now")
    now = parse_time(now_text, now=now_default or time.time(), tz=tz) if now_text else int(now_default or time.time())
    until_text = params.get("to") or params.get("until") or "now"
    from_text = params.get("from") or "-24h"
    start = parse_time(from_text, now=now, tz=tz)
    end = parse_time(until_text, now=now, tz=tz)
    return start, end, now, tz


async def render_view(request: Request) -> Response:
    state = request.app.state
    try:
        params = await read_params(request)
        targets = [t for t in get_list(params, "target") if t.strip()]
        if not targets:
            raise BadRequest("Invalid parameters (Missing required parameter 'target')")
        fmt = (params.get("format") or "json").lower()
        if fmt not in render_formats.ENCODERS:
            raise BadRequest(f"unsupported format {fmt!r}; use one of {', '.join(sorted(render_formats.ENCODERS))}")
        start, end, now, tz = parse_window(params)
        if start >= end:
            raise BadRequest("invalid time range requested")
        mdp_text = params.get("maxDataPoints") or ""
        if mdp_text and not mdp_text.strip().isdigit():
            raise BadRequest(f"maxDataPoints must be a non-negative integer, got {mdp_text!r}")
        mdp = int(mdp_text) if mdp_text else state.settings["render"]["max_data_points"]
        if flag(params, "local"):
            mdp = 0
        template = {k[len("template["):-1]: v for k, v in params.multi_items()
                    if k.startswith("template[") and k.endswith("]")}
        trees = [parse_target(t, template or None) for t in targets]
        xff_text = params.get("xFilesFactor")
        try:
            xff = float(xff_text) if xff_text else 0.0
        except ValueError:
            raise BadRequest(f"xFilesFactor must be a number, got {xff_text!r}") from None
        limits = state.settings["render"]
        tenant_limits = state.storage.limits.for_tenant(request.state.tenant)
        fctx = FetchContext(storage=state.storage, tenant=request.state.tenant, start=start, end=end, now=now,
                            max_series=min(limits["max_series_per_request"], tenant_limits.max_series_per_query),
                            max_points=min(limits["max_points_per_request"], tenant_limits.max_points_per_render),
                            xfiles_factor=xff)
        ctx = EvalContext(fetch=fctx, params=dict(params))
        graphite_web_mdp = limits.get("consolidation") == "graphite-web"
        options = {"from": start, "until": end, "jsonp": params.get("jsonp"), "tz": tz, "maxDataPoints": mdp,
                   "noNullPoints": flag(params, "noNullPoints"), "meta": flag(params, "meta"),
                   "pretty": flag(params, "pretty")}

        def produce() -> tuple[bytes, str]:
            # evaluation, consolidation and encoding all off the event loop: encoding a large response
            # takes as long as the rest, and other requests must not wait for it
            series = evaluate_targets(ctx, trees)
            if mdp > 0:
                series = (consolidation.apply_max_data_points_graphite_web(series, mdp) if graphite_web_mdp
                          else consolidation.apply_max_data_points(series, mdp))
            return render_formats.encode(fmt, series, options)

        try:
            body, ctype = await asyncio.wait_for(blocking(produce), tenant_limits.query_timeout)
        except asyncio.TimeoutError:
            return text_error(f"query timed out after {tenant_limits.query_timeout:g}s (err-plumbago-query-timeout)",
                              503)
        return Response(body, 200, media_type=ctype)
    except BadRequest as exc:
        return text_error(exc.message, exc.status)
    except FetchLimitError as exc:
        return text_error(str(exc), 422)
    except USER_ERRORS as exc:
        return text_error(f"Invalid parameters ({exc})", 400)
    except ValueError as exc:   # e.g. an unknown format reported by an encoder
        return text_error(f"Invalid parameters ({exc})", 400)
