"""The web console in a real browser: Debian's chromium driven by Playwright.

One server with passwords (under ``trust`` every client is a superuser) and its
console on a free port, one browser, for the module. The superuser signs in,
watches a classifier go from TRAINING to READY on the models page (no reload),
and opens each model's page; every chart's numbers are compared with what the
same statement returns through psycopg. A user without a grant sees neither the
models nor their data, through the pages or the JSON endpoints. axe-core checks
each page for serious or critical accessibility violations. Screenshots of each
page go to tmp/artifacts/console/ (docs/images/ holds copies for the README).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Error as PlaywrightError

from server.console.web import Console
from server.listener import Server
from server.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tmp" / "artifacts" / "console"
AXE = REPO / "tests" / "clients" / "node" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
ADMIN, ADMIN_PW = "quackml", "admin-pw"

CLASSIFIER = ("CREATE MODEL churn FROM (SELECT * FROM customers WHERE split = 'train') "
              "TARGET churn FUNCTION predict_churn IAM_ROLE default "
              "SETTINGS (S3_BUCKET 'unused', MAX_RUNTIME 30)")
REGRESSION_ROWS = "SELECT carat, depth, x, price FROM diamonds WHERE split = 'train' LIMIT 1000"
REGRESSION = (f"CREATE MODEL price FROM ({REGRESSION_ROWS}) TARGET price "
              "FUNCTION predict_price IAM_ROLE default PROBLEM_TYPE regression "
              "SETTINGS (S3_BUCKET 'unused', MAX_RUNTIME 30)")


class Site:
    def __init__(self, server: Server, console: Console):
        self.server = server
        self.console = console
        self.url = console.url
        # why the models are missing, if they are
        self.trained: str | None = "test_watch_a_model_train trains them; it did not run"

    def need_models(self) -> None:
        if self.trained is not None:
            pytest.skip(self.trained)

    def connect(self, user: str = ADMIN, password: str = ADMIN_PW) -> psycopg.Connection:
        return psycopg.connect(f"host=127.0.0.1 port={self.server.port} user={user} "
                               f"password={password} dbname=quackml", autocommit=True)


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[tuple[Server, Console]]:
    """A server and its console on free ports, stopped on the way out."""
    server = Server(settings)
    server.start()
    assert server.engine is not None
    console = Console(server.engine, settings, server.auth_secret, port=0)
    console.start()
    try:
        yield server, console
    finally:
        console.stop()
        server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("console")
    settings = Settings(host="127.0.0.1", port=0, http_port=0,
                        database=str(folder / "db.duckdb"), data_dir=str(folder / "data"),
                        samples=True, training_workers=2, training_threads=1,
                        auth="scram-sha-256", superuser=ADMIN, superuser_password=ADMIN_PW)
    with serving(settings) as (server, console):
        s = Site(server, console)
        with s.connect() as admin:
            admin.execute("CREATE USER bob PASSWORD 'bob-pw'")     # no grant at all
            admin.execute("CREATE USER carol PASSWORD 'carol-pw'")   # EXECUTE on churn
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def sign_in(browser: Any, site: Site, user: str, password: str,
            viewport: dict[str, int] | None = None) -> Any:
    # bypass_csp: axe-core is injected as an inline script, which the console's
    # Content-Security-Policy refuses (as it should)
    context = browser.new_context(viewport=viewport or {"width": 1200, "height": 900},
                                  bypass_csp=True)
    page = context.new_page()
    page.goto(site.url)
    assert page.url.endswith("/signin")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site.url)
    return page


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def accessibility(page: Any) -> None:
    """axe-core's serious and critical violations on the page: none."""
    assert AXE.exists(), "axe-core is missing: run make client-deps (npm ci in tests/clients/node)"
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => await axe.run(document)")
    bad = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
           for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == []


def fetch(page: Any, path: str) -> tuple[int, Any]:
    """A data request with the page's session cookie, from inside the page."""
    out = page.evaluate("""async (path) => {
        const r = await fetch(path, {credentials: "same-origin"});
        return [r.status, await r.text()];
    }""", path)
    return int(out[0]), json.loads(out[1])


def wait_ready(conn: psycopg.Connection, model: str, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = dict(conn.execute(f"SHOW MODEL {model}").fetchall())
        if rows["Model State"] != "TRAINING":
            assert rows["Model State"] == "READY", rows
            return
        time.sleep(0.5)
    raise AssertionError(f"{model} still training")


def cells(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        selector + " tbody tr",
        "rows => rows.map(r => Array.from(r.children).map(c => c.textContent))")


def test_sign_in_is_checked_and_data_needs_a_session(site: Site) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(site.url + "api/models")
    assert caught.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(site.url + "signin", data=b"user=quackml&password=wrong")
    assert caught.value.code == 401
    assert b"password authentication failed" in caught.value.read()
    with pytest.raises(urllib.error.HTTPError) as caught:   # unknown users fail alike
        urllib.request.urlopen(site.url + "signin", data=b"user=nobody&password=wrong")
    assert caught.value.code == 401


def test_watch_a_model_train(site: Site, browser: Any) -> None:
    page = sign_in(browser, site, ADMIN, ADMIN_PW)
    empty = page.locator(".empty")
    assert "CREATE MODEL" in empty.inner_text()
    shot(page, "empty")
    accessibility(page)
    with site.connect() as admin:
        admin.execute(CLASSIFIER)
        admin.execute(REGRESSION)   # trains beside it (two training workers)
        admin.execute("GRANT EXECUTE ON MODEL churn TO carol")
        row = page.locator('tr[data-model="public.churn"]')
        row.wait_for(timeout=20_000)   # the empty page reloads itself once a model exists
        page.evaluate("window.__same_page = true")
        # the model's own page, open while it trains: its search chart grows in place
        model_page = page.context.new_page()
        model_page.goto(site.url + "models/public/churn")
        model_page.evaluate("window.__same_page = true")
        search = model_page.locator("#chart-search [role=img]")
        drawn: list[str] = []
        model_page_moved_on = False
        states, progress = set(), []
        start = time.monotonic()
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            states.add(row.locator("td.state").inner_text())
            text = row.locator("td.progress").inner_text()
            if not progress or progress[-1].partition(" ")[2] != text:
                progress.append(f"{time.monotonic() - start:.1f} {text}")
            if "TRAINING" in states and len(progress) == 4:
                shot(page, "models-training")
            if "READY" not in states and not model_page_moved_on:
                try:
                    same_page = model_page.evaluate("window.__same_page === true")
                except PlaywrightError:
                    # the model's page reloads itself once the model is READY, which it
                    # may see before this page's row does
                    same_page, model_page_moved_on = False, True
                if same_page and search.count():
                    label = search.get_attribute("aria-label") or ""
                    if label not in drawn:
                        drawn.append(label)
            if "READY" in states:
                break
            time.sleep(0.25)
        (ARTIFACTS / "progress.txt").write_text("\n".join(progress))
        if "FAILED" in states:
            site.trained = "the models did not train (see test_watch_a_model_train)"
        assert {"TRAINING", "READY"} <= states, (states, progress)
        assert sum("trials" in p for p in progress) >= 2, progress   # progress moved
        assert page.evaluate("window.__same_page") is True   # no reload
        assert len(drawn) >= 2, drawn   # the search chart redrawn with new points, no reload
        model_page.close()
        site.trained = "the regression model did not train (see test_watch_a_model_train)"
        wait_ready(admin, "price")
        site.trained = None
    page.reload()
    assert page.locator("tr[data-model]").count() == 2
    shot(page, "models")
    accessibility(page)


def test_classifier_page(site: Site, browser: Any) -> None:
    site.need_models()
    page = sign_in(browser, site, ADMIN, ADMIN_PW)
    page.get_by_role("link", name="public.churn").click()
    page.wait_for_selector("#chart-confusion svg")
    for chart in ("search", "importance", "confusion", "roc"):
        figure = page.locator(f"#chart-{chart} [role=img]")
        assert figure.count() == 1, chart
        assert figure.get_attribute("aria-label")
    with site.connect() as admin:
        matrix = admin.execute("EVALUATE MODEL churn CONFUSION MATRIX")
        want = [[str(v) for v in r] for r in matrix.fetchall()]
        assert cells(page, "table.matrix") == want
        drawn = page.locator("#chart-confusion [role=img]").get_attribute("aria-label")
        for expected, *counts in want:
            for label, count in zip([d.name for d in matrix.description][1:], counts,
                                    strict=True):
                assert f"{expected} predicted {label}: {count}" in drawn
        roc = admin.execute("EVALUATE MODEL churn ROC CURVE").fetchall()
        assert len(cells(page, "#h-roc ~ details table")) == len(roc)
        assert f"ROC curve with {len(roc)} thresholds" == \
            page.locator("#chart-roc [role=img]").get_attribute("aria-label")
        metrics = admin.execute("EVALUATE MODEL churn")
        shown = dict(zip([th.strip() for th in page.locator("table.metrics thead th")
                          .all_inner_texts()], cells(page, "table.metrics")[0], strict=True))
        for column, value in zip([d.name for d in metrics.description], metrics.fetchone(),
                                 strict=True):
            assert float(shown[column]) == pytest.approx(value), column
        doc = json.loads(admin.execute("SELECT EXPLAIN_MODEL('public.churn')").fetchone()[0])
        shap = doc["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
        table = {r[0]: float(r[1]) for r in cells(page, "#h-importance ~ details table")}
        assert table == pytest.approx(shap)
        versions = cells(page, "table.versions")
        assert len(versions) == 1 and versions[0][2] == "True"
        learner = admin.execute("SELECT learner FROM svv_ml_model_versions "
                                "WHERE model_name = 'churn'").fetchone()[0]
        assert learner in page.locator(".facts").inner_text()
    history = cells(page, "#h-search ~ details table")
    assert history and all(int(r[1]) >= 1 for r in history)
    assert "SELECT predict_churn(" in page.locator(".sql pre").nth(1).inner_text()
    for text in ("EVALUATE MODEL \"public\".\"churn\" CONFUSION MATRIX",
                 "SELECT EXPLAIN_MODEL('public.churn')"):
        assert text in page.locator("main").inner_text()
    shot(page, "model-classifier")
    accessibility(page)


def test_regression_page(site: Site, browser: Any) -> None:
    site.need_models()
    page = sign_in(browser, site, ADMIN, ADMIN_PW)
    with site.connect() as admin:
        page.goto(site.url + "models/public/price")
        page.wait_for_selector("#chart-predicted svg")
        assert page.locator("#chart-predicted svg").count() == 2   # scatter + residuals
        rows = cells(page, "#h-predicted ~ details table")
        assert rows
        # each shown prediction is what the function returns for that row
        for actual, predicted in rows[:5]:
            assert float(predicted) in [r[0] for r in admin.execute(
                f"SELECT predict_price(carat, depth, x) FROM ({REGRESSION_ROWS}) "
                "WHERE price = %s", (float(actual),)).fetchall()]
        metrics = admin.execute("EVALUATE MODEL price")
        shown = cells(page, "table.metrics")[0]
        assert [float(v) for v in shown] == pytest.approx(list(metrics.fetchone()))
        shot(page, "model-regression")
        accessibility(page)


def test_without_a_grant_nothing_shows(site: Site, browser: Any) -> None:
    site.need_models()
    page = sign_in(browser, site, "bob", "bob-pw")
    assert page.locator("tr[data-model]").count() == 0
    assert page.locator(".empty").count() == 1
    status, data = fetch(page, "/api/models")
    assert status == 200 and data["models"] == []
    for model in ("churn", "price"):
        status, data = fetch(page, f"/api/models/public/{model}")
        assert status == 404 and set(data) == {"error"}, data
        response = page.goto(site.url + f"models/public/{model}")
        assert response.status == 404
        assert "may not see it" in page.locator("main").inner_text()
        assert "EVALUATE" not in page.content()
    # a grantee sees the granted model only, with its charts
    page = sign_in(browser, site, "carol", "carol-pw")
    assert [r.get_attribute("data-model") for r in page.locator("tr[data-model]").all()] == \
        ["public.churn"]
    status, data = fetch(page, "/api/models/public/churn")
    assert status == 200 and data["charts"]["confusion"]["rows"]
    status, data = fetch(page, "/api/models/public/price")
    assert status == 404


def test_phone_width(site: Site, browser: Any) -> None:
    site.need_models()
    page = sign_in(browser, site, ADMIN, ADMIN_PW, viewport={"width": 390, "height": 844})
    page.goto(site.url + "models/public/churn")
    page.wait_for_selector("#chart-roc svg")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shot(page, "model-phone")
    page.keyboard.press("Tab")   # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_quackml_serve_starts_and_stops_the_console(tmp_path: Path) -> None:
    """`quackml serve --http-port N` prints the console's address next to the psql line,
    serves the sign-in page, stops it as a shutdown phase on Ctrl-C, and a port in use
    stops the start with one line naming --http-port."""
    import os
    import re
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUACKML_")}
    args = [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", str(port),
            "--no-samples", "--database", str(tmp_path / "db.duckdb"),
            "--data-dir", str(tmp_path / "data")]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[1].startswith("Connect with: psql"), lines
        assert lines[2] == f"Web console: http://127.0.0.1:{port}/\n", lines
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=10)
        assert page.status == 200 and b"User name" in page.read()
        busy = subprocess.run([*args[:-4], "--database", str(tmp_path / "other.duckdb"),
                               "--data-dir", str(tmp_path / "other")], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert busy.returncode == 1
        assert busy.stderr.count("\n") == 1 and "--http-port" in busy.stderr, busy.stderr
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    phases = re.findall(r"QuackML shutdown: (.*)", out)
    assert phases[:2] == ["SIGINT received; cancelling running statements",
                          "web console stopped"], out


def test_trust_signs_in_by_name_on_loopback(tmp_path: Path) -> None:
    """Under --auth trust the console admits a loopback client by user name alone, as psql
    is admitted there (and, as there, as a superuser)."""
    import http.cookiejar

    settings = Settings(host="127.0.0.1", port=0, http_port=0, samples=False,
                        database=str(tmp_path / "db.duckdb"), data_dir=str(tmp_path / "data"),
                        training_workers=1, auth="trust")
    with serving(settings) as (_, console):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(console.url + "signin").read()
        assert b'name="password"' not in form and b"--auth trust" in form
        landed = opener.open(console.url + "signin", data=b"user=anyone")
        assert landed.url == console.url and b"No models yet" in landed.read()
        cookie = next(iter(jar))
        assert cookie.has_nonstandard_attr("httponly")
        assert cookie.get_nonstandard_attr("samesite") == "strict"
        assert cookie.expires is not None   # signed and expiring
        data = json.loads(opener.open(console.url + "api/models").read())
        assert data == {**data, "user": "anyone", "models": []}
        # a cookie not signed by this server is no session
        import base64

        body = base64.b64encode(json.dumps({"user": "quackml", "since": time.time()})
                                .encode()).decode()
        for value in (body, cookie.value.replace(cookie.value[-5:], "AAAAA")):
            forged = urllib.request.Request(console.url + "api/models",
                                            headers={"Cookie": f"{cookie.name}={value}"})
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(forged)
            assert caught.value.code == 401

