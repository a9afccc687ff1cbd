"""Change a session's data with update_session: a pure function, retried on conflict.

Run: ``SESSION_SECRET=$(python -m typed_sessions keygen) uvicorn
examples.docs_update_session:app``. Two tabs adding items at the same moment both land
in the cart.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# run time, and those of functions nested in create_app must be real objects, not strings.
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Response
from pydantic import BaseModel

from typed_sessions import (
    Err,
    Keyring,
    MemoryStore,
    Ok,
    Session,
    SessionNotFound,
    SessionStore,
    StoreError,
    make_cookie_dependency,
    secret_from_env,
    store_error_handler,
    update_session,
)


class Cart(BaseModel):
    items: tuple[str, ...] = ()


def admit(session: Session[Cart]) -> bool:
    return True


def create_app(store: SessionStore[Cart], keys: Keyring) -> FastAPI:
    current_cart = make_cookie_dependency(store, admit, keys=keys)
    app = FastAPI()
    app.add_exception_handler(StoreError, store_error_handler)

    @app.post("/cart")
    async def new_cart(response: Response) -> Cart:
        session = await current_cart.start(response, Cart())
        return session.data

    @app.post("/cart/items/{item}")
    async def add_item(item: str, session: Annotated[Session[Cart], Depends(current_cart)]) -> Cart:
        def add(cart: Cart) -> Cart:  # pure: it may run more than once
            return Cart(items=(*cart.items, item))

        match await update_session(store, session.id, add):
            case Ok(saved):
                return saved.data
            case Err(SessionNotFound()):  # ended since the dependency loaded it
                raise HTTPException(401, "Not authenticated")
            case Err(_):  # TooManyConflicts: every attempt lost a race
                raise HTTPException(409, "The cart is busy; try again")

    @app.get("/cart")
    async def show_cart(session: Annotated[Session[Cart], Depends(current_cart)]) -> Cart:
        return session.data

    return app


app = create_app(MemoryStore(Cart), Keyring.from_secrets(secret_from_env("SESSION_SECRET")))
