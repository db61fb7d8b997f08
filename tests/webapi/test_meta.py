"""``/``, ``/spec`` and ``/docs``."""

from __future__ import annotations

import httpx


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
    assert set(paths) >= {"/", "/jobs", "/jobs/{job_id}"}
    assert set(paths["/jobs"]) == {"get", "post"}
    assert set(paths["/jobs/{job_id}"]) == {"get", "put", "delete"}
    create_body = paths["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create_body == {"$ref": "#/components/schemas/JobCreate"}
    schemas = spec["components"]["schemas"]
    assert {"taskDefinition", "schedule", "overrides", "networkConfiguration"} <= set(
        schemas["JobCreate"]["properties"]
    )
    assert set(schemas["JobCreate"]["required"]) == {"taskDefinition", "schedule"}
    assert "400" in paths["/jobs"]["post"]["responses"]
    for operations in paths.values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
    assert "400" in paths["/jobs"]["get"]["responses"]
    for ref in _refs(spec):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_docs_page_renders_the_spec(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/spec" in response.text


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
