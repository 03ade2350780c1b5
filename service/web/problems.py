"""RFC 9457 problem details for every JSON error the API gives."""

from __future__ import annotations

from flask import Response, json

PROBLEM_BASE = "https://alliance-feedback.org/problems/"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, errors: dict | None = None,
                 slug: str | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors
        self.slug = slug or title.lower().replace(" ", "-")
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"type": PROBLEM_BASE + self.slug, "title": self.title, "status": self.status,
                "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return Response(json.dumps(body), status=self.status, mimetype="application/problem+json",
                        headers=self.headers)
