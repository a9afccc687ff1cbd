"""Before: Starlette's SessionMiddleware (the session itself in a signed cookie)."""

from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key="DONOTUSE", https_only=True)


@app.post("/login/{name}")
async def login(name: str, request: Request):
    request.session["user"] = name
    return {"user": name}


@app.get("/session_test")
async def session_test(request: Request):
    request.session["test_counter"] = request.session.get("test_counter", 0) + 1
    return {"user": request.session.get("user"), "test_counter": request.session["test_counter"]}


@app.post("/logout")
async def logout(request: Request):
    request.session.clear()
    return {}
