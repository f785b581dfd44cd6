"""HTTP: the preference center (``/v1/preferences``), a page a user opens from the app.

The app opens it (a link, a new tab, or an iframe with ``embed=1``) as
``/v1/preferences?client_key=<the app's client key>&token=<a user token>`` — or sends the token
as ``Authorization: Bearer`` — and every form on the page posts the token back in its body. The
page refuses (401/403, as a page) without a valid user token for this app; a server key
cannot open it. Responses carry a strict CSP (no script, styles by nonce, framed only by the
app's origins), ``same-origin`` referrer policy and ``no-store``, since the URL may hold the token.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType, RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromQuery

from edge_node.errors import Forbidden, InvalidInput, Unauthorized
from edge_node.http import preference_page
from edge_node.http.access import KEY_IN_QUERY, authorize_user, caller_of, running
from edge_node.http.schemas import error_responses
from edge_node.http.status import status_of
from edge_node.node import EdgeNode
from edge_node.records import PURPOSES

ACTIONS = ("view", "save", "delete", "confirm_delete", "cancel")


REFUSED = {status: ResponseSpec(data_container=str, media_type=MediaType.HTML, generate_examples=False,
                                description=f"{meaning}: a page saying so, in the user's language")
           for status, meaning in ((401, "no, an unknown or expired client key or user token"),
                                   (403, "a valid credential that may not open this page"))}
PAGE_ERRORS = {**error_responses(400, 429, 503), **REFUSED}
FORM_ERRORS = {**error_responses(400, 408, 413, 429, 503, 507), **REFUSED}


def is_page(request: Request) -> bool:
    return request.scope["path"] in KEY_IN_QUERY


def refusal(request: Request, status: int) -> Response[str]:
    """A refusal on the page's path (the gate's too: no client key, a bad Authorization) as a page."""
    nonce = preference_page.new_nonce()
    lang = preference_page.negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))
    return Response(preference_page.refused(lang, nonce, request.query_params.get("embed") == "1"),
                    status_code=status, media_type=MediaType.HTML, headers=preference_page.headers(nonce, []))


def _user(node: EdgeNode, request: Request, token: str | None, scope: str) -> str:
    """The user this page is for (scoped to the app's tenant): the Authorization header's user
    token, else the one in the URL or form; its consent claims apply as on any route."""
    caller = caller_of(request)
    if caller.user is None:
        if not token:
            raise Unauthorized("the preference center needs the user's token (token=... or "
                               "'Authorization: Bearer <user token>')", reason="user_token_required")
        caller = node.access.verify_user_token(caller.app, token, node.now())
    assert caller.user is not None  # a verified user token names its user
    return authorize_user(node, caller, caller.user, scope)


def _answer(node: EdgeNode, request: Request, page: preference_page.Page, scope: str, act) -> Response[str]:
    nonce = preference_page.new_nonce()
    headers = preference_page.headers(nonce, caller_of(request).app.origins)
    try:
        user_id = _user(node, request, page.token, scope)
    except (Unauthorized, Forbidden) as exc:
        return Response(preference_page.refused(page.lang, nonce, page.embed), status_code=status_of(exc),
                        media_type=MediaType.HTML, headers=headers)
    return Response(act(user_id, nonce), media_type=MediaType.HTML, headers=headers)


def _page(request: Request, token: str | None, lang: str | None, embed: str | None, policy: str | None):
    """The page's state. ``policy`` (older links named a policy version) is ignored: a saved
    choice records the app's registered policy, never one a URL can say."""
    client_key = request.headers.get("x-client-key") or request.query_params.get("client_key") or ""
    app = caller_of(request).app  # the gate admitted the client key before any handler runs
    return preference_page.Page(client_key=client_key, token=token or "", embed=embed in ("1", "true"),
                                lang=preference_page.negotiate(lang, request.headers.get("accept-language")),
                                app_name=app.name, policy_url=app.policy_url, policy_version=app.policy_version)


class PreferencesController(Controller):
    path = "/v1/preferences"
    tags = ["preferences"]
    security = [{"clientKey": [], "bearer": []}]

    @get("/", sync_to_thread=False, media_type=MediaType.HTML, responses=PAGE_ERRORS)
    def open_page(self, state: State, request: Request, token: FromQuery[str | None] = None,
                  lang: FromQuery[str | None] = None, embed: FromQuery[str | None] = None,
                  policy: FromQuery[str | None] = None) -> Response[str]:
        """The preference center page (HTML): each purpose with a toggle, what was inferred (in
        words), why recent items were shown, and "delete everything". Opened with the client key
        (header or ``client_key``) and the user's token (``token`` or Authorization);
        ``embed=1`` for an iframe, ``lang`` or Accept-Language for the language. A saved choice
        records the app's registered policy version (``control-plane apps add --policy-version``);
        ``policy`` is accepted for older links and ignored."""
        node = running(state)
        page = _page(request, token, lang, embed, policy)
        return _answer(node, request, page, "users:read",
                       lambda user_id, nonce: preference_page.render(node.users.preferences_of(user_id), page, nonce))

    @post("/", status_code=200, media_type=MediaType.HTML, responses=FORM_ERRORS)
    async def submit(self, state: State, request: Request,
                     data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
                     ) -> Response[str]:
        """The page's forms: ``action`` is save (``purpose.<name>=on`` for each granted purpose),
        delete (asks to confirm), confirm_delete (with ``confirm=yes``), cancel or view."""
        node = running(state)
        action = data.get("action", "view")
        if action not in ACTIONS:
            raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}", field="action")
        page = _page(request, data.get("token"), data.get("lang"), data.get("embed"), data.get("policy"))
        scope = {"save": "consent:write", "confirm_delete": "users:delete"}.get(action, "users:read")

        def act(user_id: str, nonce: str) -> str:
            strings = preference_page.catalogs()[page.lang]
            if action == "save":
                chosen = {p: data.get(f"purpose.{p}") == "on" for p in PURPOSES}
                # The app's registered policy is what the user saw and chose under (a policy named
                # in the page's URL is not: anyone can write a URL). Without one, each purpose keeps
                # the version the user agreed to (none recorded: none), never a name of this page.
                node.users.set_consent(user_id, chosen, caller_of(request).app.policy_version or None, None)
                return preference_page.render(node.users.preferences_of(user_id), page, nonce, notice=strings["saved"])
            if action == "delete":
                return preference_page.render(node.users.preferences_of(user_id), page, nonce, confirm=True)
            if action == "confirm_delete":
                if data.get("confirm") != "yes":
                    return preference_page.render(node.users.preferences_of(user_id), page, nonce, confirm=True,
                                                  error=strings["confirm_missing"])
                erasure = node.users.delete_user(user_id)
                notice = strings["deleted"].replace("{request_id}", erasure.request_id)
                return preference_page.render(node.users.preferences_of(user_id), page, nonce, notice=notice)
            return preference_page.render(node.users.preferences_of(user_id), page, nonce)

        return _answer(node, request, page, scope, act)
