"""``GET /me``: who the API takes the caller to be and what it may do (the console hides the
actions a read-only token cannot take)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from common.config import Role
from webapi.auth import AUTHORIZED
from webapi.deps import PrincipalDep, ServicesDep
from webapi.schemas import ErrorReply

router = APIRouter(tags=["auth"], dependencies=AUTHORIZED)


class Me(BaseModel):
    name: str
    roles: list[Role]
    task_definitions: list[str] | None = Field(default=None, alias="taskDefinitions")
    allow_command_override: bool = Field(alias="allowCommandOverride")
    auth_mode: Literal["none", "tokens"] = Field(alias="authMode")


@router.get(
    "/me",
    summary="The caller: name, roles, task-definition scope (absent: all), override rights",
    response_model=Me,
    response_model_by_alias=True,
    response_model_exclude_none=True,
    responses={
        401: {"model": ErrorReply, "description": "No valid bearer token"},
        403: {"model": ErrorReply, "description": "Never for /me: any authenticated caller may ask"},
    },
)
async def me(principal: PrincipalDep, services: ServicesDep) -> Me:
    return Me(
        name=principal.name,
        roles=sorted(principal.roles),
        taskDefinitions=None if principal.task_definitions is None else list(principal.task_definitions),
        allowCommandOverride=principal.may_override_command(),
        authMode=services.settings.auth.mode,
    )
