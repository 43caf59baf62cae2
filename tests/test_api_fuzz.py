"""Fuzzing the API from its OpenAPI document, plus hand-written nasty cases.

Requests are generated from the document's schemas (paths, query parameters, headers, bodies),
then often broken on purpose: a field replaced by arbitrary JSON, a required field dropped, an
unknown one added, the wrong content type, garbage in a header or a path. For every request:
no 5xx; the status is documented for the operation and the body matches the document; every
error names the problem; a rejected request changes no row. Seeded and derandomized, sized to
run well over 1,000 cases per backend in CI.
"""

from __future__ import annotations

import json
import math
from urllib.parse import quote, urlencode

import pytest
from api_support import DocumentChecker, make_api, openapi_path, row_counts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import MethodNotAllowed, NotFound

from feedback_core.validation import MAX_ID

GENERATED_CASES = 700
RAW_CASES = 150
FUZZ_SETTINGS = settings(
    max_examples=GENERATED_CASES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
PATH_JUNK = st.text(alphabet="abcXYZ0129-_~ !@$*(),;=%'\"", min_size=1, max_size=25)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
NASTY_STRINGS = [
    "'; DROP TABLE user_dislikes; --",
    "1 OR 1=1",
    '" OR ""="',
    "<script>alert(1)</script>",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "\u202eevil\u202c",
    "e\u0301\u0301\u0301",
    "🎬" * 60,
    "\x00",
    "\x1b[31mred",
    "x" * 5000,
    " ",
    "",
]


# ---------------------------------------------------------------- strategies from the document


class Generator:
    """Build Hypothesis strategies from the OpenAPI document's schemas."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self._cache: dict[str, st.SearchStrategy] = {}

    def resolve(self, ref: str) -> dict:
        node = self.doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def value(self, schema: dict) -> st.SearchStrategy:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = self._build(schema)
        return self._cache[key]

    def _build(self, schema: dict) -> st.SearchStrategy:
        if "$ref" in schema:
            return self.value(self.resolve(schema["$ref"]))
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "oneOf" in schema:
            return st.one_of([self.value(s) for s in schema["oneOf"]])
        kinds = schema.get("type", "object")
        if isinstance(kinds, list):
            return st.one_of([self.value({**schema, "type": k}) for k in kinds])
        return getattr(self, f"_{kinds}")(schema)

    def _integer(self, schema: dict) -> st.SearchStrategy:
        low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1)
        if low == 1 and high == MAX_ID:  # ids: mostly ones that exist, sometimes anything
            return st.one_of(st.integers(1, 40), st.integers(1, MAX_ID))
        return st.integers(low, high)

    def _number(self, schema: dict) -> st.SearchStrategy:
        low, high = schema.get("minimum"), schema.get("maximum")
        if "multipleOf" in schema:
            step = schema["multipleOf"]
            return st.integers(math.ceil(low / step), math.floor(high / step)).map(lambda i: i * step)
        return st.floats(low, high, allow_nan=False, allow_infinity=False)

    def _string(self, schema: dict) -> st.SearchStrategy:
        size = min(schema.get("maxLength", 40), 40)
        if schema.get("pattern", "").startswith("^"):  # the Idempotency-Key: visible ASCII
            return st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
        plain = st.text(min_size=schema.get("minLength", 0), max_size=size)
        if schema.get("pattern") == r"\S":
            plain = plain.filter(lambda s: s.strip())
        return plain | st.sampled_from(NASTY_STRINGS)

    def _boolean(self, schema: dict) -> st.SearchStrategy:
        return st.booleans()

    def _null(self, schema: dict) -> st.SearchStrategy:
        return st.none()

    def _array(self, schema: dict) -> st.SearchStrategy:
        items = self.value(schema.get("items", {}))
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(schema.get("maxItems", 5), 5)))

    def _object(self, schema: dict) -> st.SearchStrategy:
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        if not props:
            return st.just({}) | st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3)
        return st.fixed_dictionaries(
            {k: self.value(v) for k, v in props.items() if k in required},
            optional={k: self.value(v) for k, v in props.items() if k not in required},
        )

    def body(self, schema: dict) -> st.SearchStrategy:
        """A valid body, or one broken in one of the usual ways."""
        valid = self.value(schema)
        resolved = self.resolve(schema["$ref"]) if "$ref" in schema else schema
        names = list(resolved.get("properties", {})) or ["x"]
        return st.one_of(
            valid,
            st.tuples(valid, st.sampled_from(names), JSON_VALUES).map(lambda t: {**t[0], t[1]: t[2]}),
            st.tuples(valid, st.sampled_from(names)).map(
                lambda t: {k: v for k, v in t[0].items() if k != t[1]}
            ),
            st.tuples(valid, st.text(min_size=1, max_size=10), JSON_VALUES).map(
                lambda t: {**t[0], t[1]: t[2]}
            ),
            JSON_VALUES,
        )


def request_strategy(doc: dict, operations: list[tuple[str, str, dict]], keys: dict) -> st.SearchStrategy:
    """Requests for the documented operations (strategies built once per operation: fast)."""
    gen = Generator(doc)
    plans = []
    for path, method, op in operations:
        params = op.get("parameters", [])
        body = None
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            body = (gen.body(schema).map(json.dumps), op["requestBody"]["required"])
        plans.append(
            (
                path,
                method,
                op["x-access"],
                [
                    (p["name"], st.one_of(gen.value(p["schema"]).map(str), PATH_JUNK))
                    for p in params
                    if p["in"] == "path"
                ],
                [
                    (p["name"], st.one_of(gen.value(p["schema"]).map(str), PRINTABLE))
                    for p in params
                    if p["in"] == "query"
                ],
                [
                    (
                        p["name"],
                        p["name"] == "X-User-ID",
                        st.one_of(gen.value(p["schema"]).map(str), PRINTABLE),
                    )
                    for p in params
                    if p["in"] == "header"
                ],
                body,
            )
        )
    content_types = st.sampled_from(
        ["application/json"] * 12 + ["text/plain", "application/json; charset=utf-16"]
    )
    unknown_param = st.tuples(st.text("abcdefgh_", min_size=1, max_size=8), PRINTABLE)

    @st.composite
    def build(draw):
        path, method, access, path_params, query_params, header_params, body = draw(st.sampled_from(plans))
        url = path
        for name, strategy in path_params:
            url = url.replace("{" + name + "}", quote(draw(strategy), safe=""))
        query = [(name, draw(strategy)) for name, strategy in query_params if draw(st.booleans())]
        if draw(st.integers(0, 9)) == 0:
            query.append(draw(unknown_param))
        headers = {
            name: draw(strategy) for name, always, strategy in header_params if always or draw(st.booleans())
        }
        wanted = "admin" if access == "admin" else "service"
        who = draw(st.sampled_from([wanted] * 8 + ["service", "admin", "none", "bogus"]))
        if who != "none":
            headers["Authorization"] = f"Bearer {keys.get(who, 'fbk_' + 'b' * 43)}"
        if query:
            url += "?" + urlencode(query)
        data, content_type = None, None
        if body is not None:
            strategy, required = body
            shape = draw(st.integers(0, 19))
            if shape == 0 and not required:
                pass  # no body at all
            elif shape == 1:
                data, content_type = draw(st.sampled_from(NASTY_BODIES))
            else:
                data, content_type = draw(strategy), draw(content_types)
        return method, url, headers, data, content_type

    return build()


NASTY_BODIES = [
    ('{"movie_id": NaN}', "application/json"),
    ('{"movie_id": Infinity}', "application/json"),
    ('{"movie_id": -Infinity, "predicted_score": 1e999}', "application/json"),
    ('{"movie_id": 1' + "0" * 400 + "}", "application/json"),
    ('{"movie_id": ' + "9" * 5000 + "}", "application/json"),
    ("[" * 5000 + "]" * 5000, "application/json"),
    ('{"a":' * 2000 + "1" + "}" * 2000, "application/json"),
    ('{"movie_title": "\\ud800\\udc00\\ud800"}', "application/json"),
    ('{"movie_id": 1, "movie_id": "dup"}', "application/json"),
    ("{", "application/json"),
    ("", "application/json"),
    ("null", "application/json"),
    ("true", "application/json"),
    ('"' + "s" * 100 + '"', "application/json"),
    (b"\xff\xfe\x00{", "application/json"),
    (b'{"movie_title": "\xc3\x28"}', "application/json"),
    ("\ufeff{}", "application/json"),
    ('{"items": [' + ",".join(["1"] * 600) + "]}", "application/json"),
    ("<xml/>", "application/xml"),
    ("a=1&b=2", "application/x-www-form-urlencoded"),
    ("--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--", "multipart/form-data; boundary=b"),
    ('{"movie_id": 1}', "application/json; charset=iso-8859-1"),
    ('{"movie_id": 1}', "application/jsonx"),
    ('{"movie_id": 1}', None),
]


# ---------------------------------------------------------------- the checks


class Fuzzer:
    def __init__(self, api) -> None:
        self.api = api
        self.last = self.counts()
        self.doc = api.checker.doc
        self.checker: DocumentChecker = api.checker
        self.client = api.app.test_client()
        self.adapter = api.app.url_map.bind("localhost")
        self.cases = 0
        self.statuses: dict[int, int] = {}

    def counts(self) -> dict[str, int]:
        return row_counts(self.api.system)

    def send(self, method: str, url: str, headers: dict, data, content_type) -> None:
        before = self.last
        kwargs = {"headers": headers}
        if data is not None:
            kwargs["data"] = data
        if content_type is not None:
            kwargs["content_type"] = content_type
        response = self.client.open(url, method=method, **kwargs)
        self.cases += 1
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        what = f"{method} {url[:200]} {headers} {str(data)[:200]!r} {content_type}"
        assert status < 500, f"{status} for {what}: {response.get_data(as_text=True)[:300]}"
        assert response.mimetype == "application/json", what
        body = response.get_json()
        text = response.get_data(as_text=True)
        assert "Traceback" not in text and "sqlalchemy" not in text.lower(), what
        try:
            rule, _ = self.adapter.match(url.split("?")[0], method=method, return_rule=True)
        except (NotFound, MethodNotAllowed):
            assert status in (404, 405), what
        else:
            self.checker.check(method, openapi_path(rule.rule), status, body)
        self.last = self.counts()
        if status >= 400:
            assert body["error"]["message"].strip(), what
            assert self.last == before, f"rejected request changed rows: {what}"


@pytest.fixture
def fuzzer(system):
    api = make_api(system, key_cache_seconds=60.0)
    seed(api)
    return Fuzzer(api)


def seed(api) -> None:
    """Give the fuzzer real things to hit: movies, ratings, lists, dislikes, proposals, a version."""
    system = api.system
    system.add_movies(
        {"movie_id": m, "title": f"Movie {m}", "genres": ["Drama", "Comedy"][m % 2 :], "cast": [f"A{m}"]}
        for m in range(1, 31)
    )
    system.record_ratings([(u, m, 1.0 + (u * m) % 5) for u in range(1, 6) for m in range(1, 31, 3)])
    for user in range(1, 6):
        shown = system.recommend(user, k=5)
        first = shown["items"][0]
        system.record_dislike(
            user_id=user,
            movie_id=first["movie_id"],
            movie_title="",
            recommendation_set_id=shown["recommendation_set_id"],
            predicted_score=first["predicted_score"],
            reason="wrong_genre",
        )
    system.retrain("seed")


def test_generated_requests_never_fail_and_rejections_write_nothing(fuzzer):
    operations = [
        (path, method.upper(), op)
        for path, item in fuzzer.doc["paths"].items()
        for method, op in item.items()
    ]
    keys = {"service": fuzzer.api.service_key, "admin": fuzzer.api.admin_key}

    @FUZZ_SETTINGS
    @given(request_strategy(fuzzer.doc, operations, keys))
    def run(case):
        fuzzer.send(*case)

    run()
    assert fuzzer.cases >= GENERATED_CASES
    # The generator reaches both sides: accepted requests and each kind of refusal.
    assert {200, 400, 401, 403, 404, 415} <= set(fuzzer.statuses), fuzzer.statuses
    assert sum(n for s, n in fuzzer.statuses.items() if s < 300) >= 100, fuzzer.statuses


def test_arbitrary_bytes_as_bodies_are_refused_cleanly(fuzzer):
    headers = fuzzer.api.headers("service")

    @settings(FUZZ_SETTINGS, max_examples=RAW_CASES)
    @given(
        st.sampled_from(["/api/dislike", "/api/recommendation-sets", "/api/ratings"]),
        st.binary(max_size=300) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    )
    def run(path, raw):
        fuzzer.send("POST", path, headers, raw, "application/json")

    run()
    assert fuzzer.cases >= RAW_CASES


def test_hand_written_nasty_cases(fuzzer):
    service = fuzzer.api.headers("service")
    admin = fuzzer.api.headers("admin", user=None)
    cases = []
    for raw, content_type in NASTY_BODIES:
        for path in ("/api/dislike", "/api/recommendation-sets", "/api/ratings", "/api/user-tokens"):
            cases.append(("POST", path, service, raw, content_type))
        cases.append(("POST", "/api/adjustments/1/approve", admin, raw, content_type))
        cases.append(("POST", "/api/retrain-jobs", admin, raw, content_type))
    for text in NASTY_STRINGS:
        for field in ("movie_title", "feedback_text", "reason", "franchise"):
            body = {"movie_id": 3, "movie_title": "T", field: text}
            cases.append(("POST", "/api/dislike", service, json.dumps(body), "application/json"))
        cases.append(
            (
                "POST",
                "/api/dislike",
                service,
                json.dumps({"movie_id": 3, "genres": [text]}),
                "application/json",
            )
        )
        cases.append(("GET", "/api/dislike-history?" + urlencode({"limit": text}), service, None, None))
        cases.append(("GET", "/api/adjustments?" + urlencode({"feature": text}), admin, None, None))
        cases.append(("GET", "/api/adjustments?" + urlencode({"status": text}), admin, None, None))
        cases.append(("DELETE", "/api/dislike/" + quote(text or "x", safe=""), service, None, None))
        cases.append(
            (
                "GET",
                "/api/dislike-history",
                {**service, "X-User-ID": text.encode().decode("latin-1")},
                None,
                None,
            )
        )
        cases.append(
            (
                "POST",
                "/api/dislike",
                {**service, "Idempotency-Key": text.encode().decode("latin-1")},
                '{"movie_id": 3}',
                "application/json",
            )
        )
    for number in (0, -1, 2**63, 2**64, 1e308, -1e308, 0.5, 1e-320, "1", None, [], {}):
        for field in ("movie_id", "predicted_score", "recommendation_set_id"):
            body = json.dumps({"movie_id": 3, "movie_title": "T", field: number})
            cases.append(("POST", "/api/dislike", service, body, "application/json"))
        cases.append(
            (
                "POST",
                "/api/ratings",
                service,
                json.dumps({"movie_id": 3, "rating": number}),
                "application/json",
            )
        )
    for method in ("PUT", "PATCH", "TRACE"):
        cases.append((method, "/api/dislike", service, "{}", "application/json"))
    for path in ("/api/dislike/1/2", "/api/../healthz", "/api/dislike-history/", "/API/DISLIKE", "/api/%00"):
        cases.append(("GET", path, service, None, None))
    for case in cases:
        fuzzer.send(*case)
    assert fuzzer.cases == len(cases) >= 150
    assert sum(n for s, n in fuzzer.statuses.items() if s < 300) >= 20, fuzzer.statuses
