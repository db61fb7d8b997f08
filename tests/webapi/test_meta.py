"""``/``, ``/spec``, ``/docs`` and ``/redoc``: the document, and pages that work offline."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest


def test_home_lists_endpoints(client: httpx.Client) -> None:
    reply = client.get("/").json()
    hrefs = {resource["link"]["href"] for resource in reply["resources"]}
    assert hrefs == {"/jobs", "/spec", "/docs"}
    for href in hrefs:
        assert client.get(href).status_code == 200


def test_spec_documents_every_path_and_body(client: httpx.Client) -> None:
    spec = client.get("/spec").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert set(paths) >= {"/", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/runs", "/me"}
    assert set(paths["/jobs"]) == {"get", "post"}
    assert set(paths["/jobs/{job_id}"]) == {"get", "put", "delete"}
    create_body = paths["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"taskDefinition", "schedule", "overrides", "networkConfiguration"} <= set(
        create_body["properties"]
    )
    assert set(create_body["required"]) == {"taskDefinition", "schedule"}
    container = create_body["properties"]["overrides"]["anyOf"][0]["items"]
    assert {"containerName", "environment", "command"} <= set(container["properties"])
    update_body = paths["/jobs/{job_id}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert "required" not in update_body
    assert "400" in paths["/jobs"]["post"]["responses"]
    for operations in paths.values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
    assert "400" in paths["/jobs"]["get"]["responses"]
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)


def test_spec_serves_runs_without_internal_fields(client: httpx.Client) -> None:
    spec = client.get("/spec").json()
    runs = spec["paths"]["/jobs/{job_id}/runs"]["get"]["responses"]["200"]["content"]["application/json"]
    page = spec["components"]["schemas"][runs["schema"]["$ref"].rsplit("/", 1)[-1]]
    run_ref = page["properties"]["runs"]["items"]["$ref"]
    run = spec["components"]["schemas"][run_ref.rsplit("/", 1)[-1]]
    assert run_ref.endswith("/RunPublic")
    assert {"jobId", "scheduledFor", "status", "tasks", "failures"} <= set(run["properties"])
    assert not {"token", "replica"} & set(run["properties"])


def test_spec_declares_bearer_auth_on_every_api_operation(client: httpx.Client) -> None:
    spec = client.get("/spec").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            expected = None if path == "/" else [{"bearer": []}]
            assert operation.get("security") == expected, (method, path)
            if path != "/":
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_and_every_asset_they_reference_load_from_the_app(client: httpx.Client, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/spec" in response.text
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""", response.text)
    urls = {a or b for a, b in references}
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        assert not urlsplit(url).netloc, f"{page} references an external URL: {url}"
        asset = client.get(urljoin(f"{client.base_url}{page}", url))
        assert asset.status_code == 200, url
        assert asset.content, url


def test_docs_page_offers_authorize(client: httpx.Client) -> None:
    """Swagger UI shows Authorize when the document has a security scheme; it keeps the
    token across reloads and never calls an external validator."""
    html = client.get("/docs").text
    assert '"persistAuthorization": true' in html
    assert '"validatorUrl": null' in html


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
