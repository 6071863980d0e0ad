"""The console's HTML, rendered on the server (every value escaped with ``html.escape``).

The charts are drawn in the browser by ``static/console.js`` from the same data
the page embeds (a ``<script type="application/json">`` block, which browsers
never run); each chart has a table with its numbers beside it and names the
statement that gives them.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

SAMPLE_CREATE = """CREATE MODEL customer_churn
FROM (SELECT * FROM customers WHERE split = 'train')
TARGET churn
FUNCTION predict_churn
IAM_ROLE default
SETTINGS (S3_BUCKET 'unused', MAX_RUNTIME 60);"""


def _e(value: Any) -> str:
    return "" if value is None else escape(str(value))


def layout(title: str, body: str, user: str | None, data: Any = None) -> str:
    account = ""
    if user is not None:
        account = (f'<form method="post" action="/signout" class="account">'
                   f'<span>Signed in as <strong>{_e(user)}</strong></span> '
                   f'<button type="submit">Sign out</button></form>')
    payload = ""
    if data is not None:
        text = json.dumps(data).replace("<", "\\u003c")
        payload = f'<script type="application/json" id="page-data">{text}</script>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · QuackML console</title>
<link rel="stylesheet" href="/static/console.css">
</head><body>
<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Console"><a class="brand" href="/">QuackML console</a></nav>
{account}</header>
<main id="main">{body}</main>
{payload}
<script src="/static/vendor/d3.min.js"></script>
<script src="/static/vendor/plot.umd.min.js"></script>
<script src="/static/console.js"></script>
</body></html>"""


def signin(trust: bool, user: str, refusal: str | None, failure: str | None = None) -> str:
    if refusal is not None:
        body = f'<h1>Sign in</h1><p class="error" role="alert">{_e(refusal)}</p>'
        return layout("Sign in", body, None)
    password = "" if trust else (
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" '
        'required>')
    note = ("<p>The server runs with <code>--auth trust</code>: on this machine, as with "
            "psql, a user name is enough.</p>" if trust else
            "<p>Sign in with your QuackML (PostgreSQL) user name and password.</p>")
    error = f'<p class="error" role="alert">{_e(failure)}</p>' if failure else ""
    body = f"""<h1>Sign in</h1>{note}{error}
<form method="post" action="/signin" class="signin">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" required value="{_e(user)}">
{password}
<button type="submit">Sign in</button></form>"""
    return layout("Sign in", body, None)


def model_href(schema: str, name: str) -> str:
    return f"/models/{quote(schema, safe='')}/{quote(name, safe='')}"


def models(data: dict[str, Any]) -> str:
    rows = data["models"]
    if not rows:
        body = f"""<h1>Models</h1>
<section class="empty" aria-labelledby="empty-title">
<h2 id="empty-title">No models yet</h2>
<p>Train one on the sample table <code>customers</code> (loaded into a new database), from
psql or any PostgreSQL client; it appears here while it trains:</p>
{_code(SAMPLE_CREATE, "create-sample")}
<p>docs/sql.md in the repository describes every option.</p></section>
<div id="models" data-live="1" hidden></div>"""
        return layout("Models", body, data["user"], {"kind": "models", "data": data})
    body = f"""<h1>Models</h1>
<p class="source">From <code>{_e(data["statement"])}</code> and, per model,
<code>SHOW MODEL</code> and <code>svv_ml_model_versions</code>, run as you; models you may
not run (no EXECUTE) are not listed. Training progress updates every second.</p>
<div id="models" data-live="1">{models_table(rows)}</div>"""
    return layout("Models", body, data["user"], {"kind": "models", "data": data})


def progress_text(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    best = ""
    if p.get("best_metric") is not None:
        best = f", best {p.get('metric_name') or 'metric'} {p['best_metric']:.4f}"
    return (f"{p['phase']}: {p['elapsed_s']:.0f} s of {p['budget_s']:.0f} s, "
            f"{p.get('trials', 0)} trials{best}")


def models_table(rows: list[dict[str, Any]]) -> str:
    """The models table (console.js draws the same one from /api/models)."""
    out = ['<table class="models"><caption>Models you may see</caption><thead><tr>'
           '<th scope="col">Model</th><th scope="col">State</th>'
           '<th scope="col">Problem type</th><th scope="col">Metric</th>'
           '<th scope="col">Owner</th><th scope="col">Versions</th>'
           '<th scope="col">Training progress</th></tr></thead><tbody>']
    for m in rows:
        p = m.get("progress")
        bar = ""
        if p:
            share = min(1.0, p["elapsed_s"] / p["budget_s"]) if p["budget_s"] else 0.0
            bar = (f'<progress max="100" value="{share * 100:.0f}" '
                   f'aria-label="elapsed against budget">{share * 100:.0f}%</progress> ')
        metric = f"{_e(m['metric_name'])} {_e(m['metric'])}" if m.get("metric_name") else ""
        active = "none active yet" if m["active_version"] is None else \
            f"active: v{_e(m['active_version'])}"
        out.append(
            f'<tr data-model="{_e(m["schema"])}.{_e(m["name"])}">'
            f'<th scope="row"><a href="{model_href(m["schema"], m["name"])}">'
            f'{_e(m["schema"])}.{_e(m["name"])}</a></th>'
            f'<td class="state">{_e(m["state"])}</td><td>{_e(m["problem_type"])}</td>'
            f'<td>{metric}</td><td>{_e(m["owner"])}</td>'
            f'<td>{_e(m["versions"])} ({active})</td>'
            f'<td class="progress">{bar}<span>{_e(progress_text(p) or m.get("status"))}'
            f'</span></td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def not_found(user: str, schema: str, name: str) -> str:
    body = (f'<h1>Not found</h1><p>Model <code>{_e(schema)}.{_e(name)}</code> does not exist '
            f'or you may not see it (seeing a model needs EXECUTE on it).</p>'
            f'<p><a href="/">All models</a></p>')
    return layout("Not found", body, user)


def _code(sql: str, ident: str) -> str:
    return (f'<div class="sql"><pre tabindex="0"><code id="{ident}">{_e(sql)}</code></pre>'
            f'<button type="button" class="copy" data-copy="{ident}">Copy</button></div>')


def _table(columns: list[str], rows: list[list[Any]], caption: str, cls: str = "") -> str:
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(
        (f'<th scope="row">{_e(v)}</th>' if i == 0 and cls == "matrix" else f"<td>{_e(v)}</td>")
        for i, v in enumerate(r)) + "</tr>" for r in rows)
    return (f'<div class="scroll" tabindex="0" role="region" aria-label="{_e(caption)}">'
            f'<table class="{cls}"><caption>{_e(caption)}</caption><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table></div>")


def _figure(key: str, title: str, statement: str, description: str, numbers: str,
            error: str | None = None) -> str:
    """A chart: its title, the statement that gives its numbers, the drawing (by
    console.js into the div) and the numbers as a table."""
    if error:
        inner = f'<p class="error">The statement failed: {_e(error)}</p>'
    else:
        inner = (f'<div class="chart" id="chart-{key}" data-chart="{key}"></div>'
                 f'<details><summary>The numbers</summary>{numbers}</details>')
    return (f'<section class="figure" aria-labelledby="h-{key}"><h3 id="h-{key}">{_e(title)}</h3>'
            f'<p class="desc">{_e(description)}</p>'
            f'<p class="source">Numbers from <code>{_e(statement)}</code></p>{inner}</section>')


def model(user: str, info: dict[str, Any]) -> str:
    schema, name = info["schema"], info["name"]
    charts = info["charts"]
    parts: list[str] = [
        f'<p><a href="/">All models</a></p><h1>{_e(schema)}.{_e(name)}</h1>',
        '<dl class="facts">',
        *(f"<dt>{label}</dt><dd{attr}>{_e(value)}</dd>" for label, value, attr in (
            ("State", info["state"], ' id="model-state"'),
            ("Problem type", info["problem_type"] or info["model_type"], ""),
            ("Owner", info["owner"], ""),
            ("Chosen learner", info["learner"], ""),
            ("Training job", info["status"], ' id="model-status"'),
            *((("Failure reason", info["failure"], ""),) if info.get("failure") else ()))),
        "</dl>",
    ]
    # the search
    p: dict[str, Any] = info.get("progress") or {}
    history = p.get("history") or []
    parts.append('<h2>Training</h2>')
    training = info["state"] == "TRAINING" or info.get("latest_state") == "TRAINING"
    if history or training:
        parts.append(_figure(
            "search", "Best validation metric during the search",
            "the training job's progress (what SHOW MODEL's Training Job Status reads)",
            f"The best {p.get('metric_name') or 'metric'} found so far, against seconds "
            "since the job started and against trials.",
            _table(["seconds", "trials", f"best {p.get('metric_name') or 'metric'}"],
                   history, "Best validation metric so far")))
    else:
        parts.append('<p id="search-none">No search history for this version (AUTO OFF, '
                     'k-means and bring-your-own models have no search).</p>')
    parts.append("<h2>Evaluation</h2>")
    metrics = charts.get("metrics")
    if metrics:
        if metrics.get("error"):
            parts.append(f'<p class="error">{_e(metrics["statement"])}: {_e(metrics["error"])}</p>')
        else:
            parts.append(f'<section aria-labelledby="h-metrics"><h3 id="h-metrics">Metrics on the '
                         f'validation holdout</h3><p class="source">Numbers from '
                         f'<code>{_e(metrics["statement"])}</code></p>'
                         + _table(metrics["columns"], metrics["rows"], "Holdout metrics",
                                  "metrics") + "</section>")
    imp = charts.get("importance")
    if imp and imp.get("values"):
        parts.append(_figure(
            "importance", "Feature importance", imp["statement"],
            "Mean absolute SHAP value of each feature (how much it moves the prediction).",
            _table(["feature", "mean |SHAP|"], imp["values"], "Feature importance")))
    conf = charts.get("confusion")
    if conf:
        parts.append(_figure(
            "confusion", "Confusion matrix on the holdout", conf["statement"],
            "Rows: the expected label; columns: the label predicted; cells: row counts.",
            _table(conf["columns"], conf["rows"], "Confusion matrix", "matrix"),
            conf.get("error")))
    roc = charts.get("roc")
    if roc:
        parts.append(_figure(
            "roc", "ROC curve on the holdout", roc["statement"],
            "Recall (true positive rate) against false positive rate, one point per threshold.",
            _table(roc["columns"], roc["rows"], "ROC curve"), roc.get("error")))
    pred = charts.get("predicted")
    if pred:
        parts.append(_figure(
            "predicted", "Predicted against actual", pred["statement"],
            f"A sample of up to {len(pred['rows'])} training rows: the model's prediction "
            "against the true value, and the residual (actual - predicted) against the "
            "prediction.",
            _table(pred["columns"], pred["rows"][:50], "Predicted and actual (first 50)"),
            pred.get("error")))
    clusters = charts.get("clusters")
    if clusters:
        parts.append(_figure(
            "clusters", "Cluster sizes", clusters["statement"],
            "Rows of the training data assigned to each cluster.",
            _table(clusters["columns"], clusters["rows"], "Cluster sizes"),
            clusters.get("error")))
    fc = charts.get("forecast")
    if fc:
        options = "".join(f'<option value="{_e(s)}"{" selected" if s == fc["chosen"] else ""}>'
                          f"{_e(s)}</option>" for s in fc["series"] if s is not None)
        chooser = (f'<form method="get" class="series"><label for="series">Series</label>'
                   f'<select id="series" name="series">{options}</select>'
                   f'<button type="submit">Show</button></form>') if options else ""
        f = fc["forecast"]
        hist = fc.get("history") or {}
        parts.append(chooser + _figure(
            "forecast", f"Forecast of series {fc['chosen']}", f["statement"] + "; " +
            str(hist.get("statement", "")),
            "The series' history (the last training rows), the forecast (p50, or mean) and "
            "the band between the lowest and highest percentile.",
            _table(f["columns"], f["rows"], "Forecast"), f.get("error")))
    if info.get("source_note"):
        parts.append(f'<p class="note">{_e(info["source_note"])}</p>')
    if not any(k in charts for k in ("confusion", "predicted", "clusters", "forecast")):
        parts.append("<p>Evaluation charts appear once the model is READY.</p>"
                     if info["state"] != "READY" else
                     "<p>No evaluation chart for this kind of model.</p>")
    versions = info["versions"]
    parts.append('<h2>Versions</h2>'
                 f'<p class="source">From <code>{_e(versions["statement"])}</code></p>'
                 + _table(versions["columns"], versions["rows"], "Versions (active = true)",
                          "versions"))
    parts.append("<h2>Use it from SQL</h2>")
    for i, snippet in enumerate(info["sql"]):
        parts.append(f"<h3>{_e(snippet['title'])}</h3>" + _code(snippet["sql"], f"sql-{i}"))
    show = info["show"]
    parts.append(f'<details><summary>SHOW MODEL {_e(schema)}.{_e(name)}</summary>'
                 + _table(show["columns"], show["rows"], "SHOW MODEL") + "</details>")
    return layout(f"{schema}.{name}", "".join(parts), user, {"kind": "model", "data": info})
