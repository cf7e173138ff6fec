"""Options shared by several commands, each declared once.

:data:`CONNECTION_OPTIONS` is every flag that says where AWS is called: a command decorated with
:func:`connection_options` takes them all and receives one :class:`~fleetops.catalogue.specs.Where`
as its ``where`` argument. A new connection flag is one entry here (and one field of ``Where``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

__all__ = ["CONNECTION_OPTIONS", "JsonOpt", "YesOpt", "connection_options"]

F = TypeVar("F", bound=Callable[..., Any])

_PANEL = "Connection"


def _option(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


_ACCOUNTS_PANEL = "Accounts"


def _account_option(
    name: str, annotation: Any, flag: str, metavar: str, help: str
) -> inspect.Parameter:
    option = typer.Option(
        flag, metavar=metavar, help=help, rich_help_panel=_ACCOUNTS_PANEL, show_default=False
    )
    return _option(name, Annotated[annotation, option])


#: Other accounts (each account x region is a scope), and the role assumed in each.
ACCOUNT_OPTIONS: list[inspect.Parameter] = [
    _account_option(
        "account",
        list[str] | None,
        "--account",
        "ID",
        help="An AWS account to act in (repeatable), by assuming --role-name in it.",
    ),
    _account_option(
        "accounts_file",
        str | None,
        "--accounts-file",
        "FILE",
        help="A file of account ids, one a line, # comments.",
    ),
    _account_option(
        "role_name", str | None, "--role-name", "NAME", "The IAM role to assume in each account."
    ),
    _account_option(
        "role_arn_template",
        str | None,
        "--role-arn-template",
        "TEMPLATE",
        help="The role's ARN with {account}, e.g. 'arn:aws:iam::{account}:role/ops/FleetOps'.",
    ),
    _account_option(
        "external_id",
        str | None,
        "--external-id",
        "ID",
        help="The external id the roles' trust policy asks for.",
    ),
]

#: The connection flags, in the order ``--help`` shows them; each name is a field of ``Where``.
CONNECTION_OPTIONS: list[inspect.Parameter] = [
    _option(
        "region",
        Annotated[
            list[str] | None,
            typer.Option(
                "--region",
                help="AWS region (repeatable: one job over several regions). Default: "
                "AWS_REGION / AWS_DEFAULT_REGION, else the profile's region.",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    _option(
        "profile",
        Annotated[
            str | None,
            typer.Option(
                "--profile",
                help="AWS profile (default: AWS_PROFILE, else the default chain).",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    _option(
        "endpoint_url",
        Annotated[
            list[str] | None,
            typer.Option(
                "--endpoint-url",
                help="WorkSpaces endpoint URL (one, or one per --region in order; default: "
                "AWS_ENDPOINT_URL_WORKSPACES).",
                rich_help_panel=_PANEL,
                show_default=False,
            ),
        ],
    ),
    *ACCOUNT_OPTIONS,
]


def connection_options(fn: F) -> F:
    """Give the command every flag of :data:`CONNECTION_OPTIONS`; it receives them as one
    ``where`` keyword argument (a :class:`fleetops.catalogue.specs.Where`)."""
    signature = inspect.signature(fn, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "where"]
    names = [p.name for p in CONNECTION_OPTIONS]

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        from fleetops.catalogue.specs import Where

        given: dict[str, Any] = {}
        for name in names:
            value = kwargs.pop(name, None)
            if value is not None:  # a repeatable flag arrives as a list: Where holds tuples
                given[name] = tuple(value) if isinstance(value, list) else value
        return fn(*args, where=Where(**given), **kwargs)

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *CONNECTION_OPTIONS]
    )
    return command  # type: ignore[return-value]


JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
