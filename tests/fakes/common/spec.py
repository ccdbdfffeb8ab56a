"""spec.py — checks the fakes' traffic against the vendors' official OpenAPI files.

Flow: backend (C) → fake (this checks the request) → fake's answer (this checks the response).
The official spec files (tests/fakes/specs, verbatim copies of shared/specs) are loaded as they
are, never hand-copied into code: every request a backend sends must satisfy its operation (path, required query parameters, request body schema), and
every response a fake sends must satisfy the schema the spec gives for its status. Violations are
collected, not raised, so a test can read them all at the end.
"""
import re
import threading

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Spec:
    def __init__(self, path, prefix=""):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.load(f, Loader=_LOADER)
        self.prefix = prefix
        self.ops = []  # (regex, method, operation, path template)
        for tmpl, item in self.doc.get("paths", {}).items():
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(tmpl)) + "$"
            for method, op in item.items():
                if method in ("get", "post", "put", "delete", "patch"):
                    self.ops.append((re.compile(rx), method.upper(), op, tmpl))
        # Literal templates first, so /sandbox/paginated wins over /sandbox/{id}.
        self.ops.sort(key=lambda o: o[3].count("{"))
        self.lock = threading.Lock()
        self.violations = []
        self.checked = 0

    # ---- lookup ----

    def find(self, method, path):
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix):]
        for rx, m, op, tmpl in self.ops:
            if m == method and rx.match(path):
                return op, tmpl
        return None, None

    def _resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 32:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return {}
            node = self.doc
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            seen += 1
        return node

    # ---- schema check (the subset of JSON Schema these specs use) ----

    def _check(self, schema, value, where, out, depth=0):
        schema = self._resolve(schema)
        if not isinstance(schema, dict) or depth > 40:
            return
        if value is None:
            if not schema.get("nullable") and schema.get("type") not in (None, "null"):
                out.append("%s: null where %s is required" % (where, schema.get("type")))
            return
        for sub in schema.get("allOf", []):
            self._check(sub, value, where, out, depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                for sub in schema[key]:
                    trial = []
                    self._check(sub, value, where, trial, depth + 1)
                    if not trial:
                        break
                else:
                    out.append("%s: matches none of %s" % (where, key))
        t = schema.get("type")
        kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
        if t in kinds and not isinstance(value, kinds[t]):
            out.append("%s: %r is not a %s" % (where, value, t))
            return
        if t == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            out.append("%s: %r is not an integer" % (where, value))
            return
        if t == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            out.append("%s: %r is not a number" % (where, value))
            return
        if "enum" in schema and value not in schema["enum"]:
            out.append("%s: %r not in %s" % (where, value, schema["enum"]))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                out.append("%s: %r below minimum %s" % (where, value, schema["minimum"]))
            if "maximum" in schema and value > schema["maximum"]:
                out.append("%s: %r above maximum %s" % (where, value, schema["maximum"]))
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    out.append("%s: required field '%s' missing" % (where, name))
            extra = schema.get("additionalProperties")
            for k, v in value.items():
                if k in props:
                    self._check(props[k], v, "%s.%s" % (where, k), out, depth + 1)
                elif isinstance(extra, dict):
                    self._check(extra, v, "%s.%s" % (where, k), out, depth + 1)
        if isinstance(value, list) and "items" in schema:
            for i, v in enumerate(value):
                self._check(schema["items"], v, "%s[%d]" % (where, i), out, depth + 1)

    def _note(self, problems):
        with self.lock:
            self.checked += 1
            self.violations.extend(problems)

    # ---- requests and responses ----

    def check_request(self, method, path, query, body):
        """Returns the problems found (also recorded); body is parsed JSON or None."""
        op, tmpl = self.find(method, path)
        if op is None:
            problems = ["%s %s: no such operation in the spec" % (method, path)]
            self._note(problems)
            return problems
        problems = []
        where = "%s %s request" % (method, tmpl)
        for p in op.get("parameters", []):
            p = self._resolve(p)
            if p.get("in") == "query":
                if p.get("required") and p["name"] not in query:
                    problems.append("%s: required query '%s' missing" % (where, p["name"]))
                if p["name"] in query:
                    s = self._resolve(p.get("schema", {}))
                    if s.get("type") == "integer" and not re.match(r"^-?\d+$", query[p["name"]]):
                        problems.append("%s: query '%s' not an integer" % (where, p["name"]))
        rb = self._resolve(op.get("requestBody", {}))
        if rb:
            schema = rb.get("content", {}).get("application/json", {}).get("schema")
            if body is None:
                if rb.get("required"):
                    problems.append("%s: body required" % where)
            elif schema is not None:
                self._check(schema, body, where, problems)
        self._note(problems)
        return problems

    def check_response(self, method, path, status, body):
        """Checks a JSON response (body parsed, or None for an empty one) against the spec."""
        op, tmpl = self.find(method, path)
        if op is None:
            self._note(["%s %s: response for an operation not in the spec" % (method, path)])
            return
        responses = op.get("responses", {})
        resp = responses.get(str(status)) or responses.get(status)
        problems = []
        where = "%s %s response %d" % (method, tmpl, status)
        if resp is None:
            if 200 <= status < 300:
                problems.append("%s: status not in the spec (%s)" % (where, list(responses)))
            # Error statuses the spec leaves out follow the reference notes instead.
            self._note(problems)
            return
        resp = self._resolve(resp)
        schema = resp.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            if body is None:
                problems.append("%s: JSON body expected" % where)
            else:
                self._check(schema, body, where, problems)
        self._note(problems)
